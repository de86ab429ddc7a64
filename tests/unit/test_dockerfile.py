"""The batchd image's Dockerfile keeps what the Kubernetes backend relies on (no engine here
builds it, so its essentials are read from the text)."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_installs_the_project_and_runs_batchd_as_a_non_root_user() -> None:
    instructions = _instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [shlex.split(arg) for op, arg in instructions if op == "RUN"]
    copied = [arg.split()[-1] for op, arg in instructions if op == "COPY"]
    installs = [argv[argv.index("install") + 1] for argv in runs if argv[:2] == ["pip", "install"]]
    # The project with its kubernetes extra: the image also runs `batchd serve` in a cluster.
    assert installs and installs[0] == f"{copied[0].rstrip('/')}[kubernetes]"
    [entrypoint] = [json.loads(arg) for op, arg in instructions if op == "ENTRYPOINT"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["batchd"] and "batchd" in scripts
    [user] = [arg for op, arg in instructions if op == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert any("chown" in argv and "/opt/ml" in argv for argv in runs)


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignore = [line for line in lines if line and not line.startswith("#")]
    assert ignore[0] == "**"  # everything not named after it stays out
    assert {"!pyproject.toml", "!README.md", "!src/"} <= set(ignore)
