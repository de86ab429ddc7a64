"""``batchd serve``'s options: their defaults are Settings' own, written once."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from batchd.cli import build_parser, serve_settings
from batchd.settings import DEFAULTS, Settings


def _serve_parser() -> argparse.ArgumentParser:
    [subparsers] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    serve: argparse.ArgumentParser = subparsers.choices["serve"]
    return serve


def test_no_serve_option_that_sets_a_setting_has_a_default_of_its_own() -> None:
    fields = {field.name for field in dataclasses.fields(Settings)}
    setting_options = [a for a in _serve_parser()._actions if a.dest in fields]
    assert len(setting_options) == len(fields) - 1  # access_keys come from a file or the env
    assert {a.dest: a.default for a in setting_options} == dict.fromkeys(
        (a.dest for a in setting_options), argparse.SUPPRESS
    )


def test_serve_without_options_runs_with_the_settings_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BATCHD_ACCESS_KEYS", raising=False)
    assert serve_settings(build_parser().parse_args(["serve"])) == DEFAULTS == Settings()


def test_serve_options_reach_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BATCHD_ACCESS_KEYS", "id:secret")
    argv = ["serve", "--port", "9000", "--db", "sqlite:///x.db", "--hosts-file", "none"]
    argv += ["--image-command", "img:*=python3 -m train", "--data-dir", str(tmp_path)]
    settings = serve_settings(build_parser().parse_args(argv))
    assert settings == dataclasses.replace(
        DEFAULTS,
        port=9000,
        db_url="sqlite:///x.db",
        hosts_file=None,
        image_commands={"img:*": ("python3", "-m", "train")},
        data_dir=tmp_path,
        access_keys={"id": "secret"},
    )
