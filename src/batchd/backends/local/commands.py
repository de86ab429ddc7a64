"""What each host runs, and with which environment.

Resolution, first match wins:

1. ``AlgorithmSpecification.ContainerEntrypoint`` + ``ContainerArguments``, run as an argv on
   this machine (``argv[0]`` is looked up on the inherited ``PATH``; cwd is the host's ``code/``).
2. ``TrainingImage`` mapped by the backend's ``image_commands``: exact image name first, then the
   longest ``prefix*`` pattern; that argv then ``ContainerArguments``. This is how SageMaker SDK
   jobs, which send only an image, run without a container runtime.
3. A configured container runtime (``docker``/``podman``) that answers ``<runtime> info``:
   ``<runtime> run --rm --network host --add-host algo-N:<addr> -v <base>:/opt/ml -e ... <image>
   train``. Not exercised by the test suite (no engine on the development machine).
4. Otherwise the attempt fails with a FailureReason that says what to configure.

Environment: the inherited ``PATH``, the backend's ``extra_env``, the payload's ``Environment``
(plus ``SM_STUDIO_LOCAL_MODE=true`` when host names could not be made resolvable, see
``hostnames``), then the platform's own variables (which win): ``SAGEMAKER_BASE_DIR``,
``TRAINING_JOB_NAME``, ``TRAINING_JOB_ARN``, ``CURRENT_HOST``, ``AWS_REGION`` and
``BATCHD_HOST_ADDRESSES``. Nothing else of the server's environment (credentials, database URLs)
leaks into jobs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batchd import jsontext
from batchd.backends.local.hostnames import loopback_address
from batchd.backends.local.payload import TrainingRequest

__all__ = ["HostCommand", "Launcher", "check_runtime", "match_image"]


@dataclass(frozen=True)
class HostCommand:
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    cleanup: tuple[str, ...] = ()


def match_image(image: str, image_commands: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """The argv ``image`` maps to: exact name, else the longest matching ``prefix*`` pattern."""
    if image in image_commands:
        return tuple(image_commands[image])
    patterns = [
        pattern
        for pattern in image_commands
        if pattern.endswith("*") and image.startswith(pattern[:-1])
    ]
    if not patterns:
        return None
    return tuple(image_commands[max(patterns, key=len)])


async def check_runtime(runtime: str, timeout: float = 15.0) -> str | None:
    """None if ``<runtime> info`` succeeds, else why the runtime is unusable."""
    try:
        process = await asyncio.create_subprocess_exec(
            runtime,
            "info",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        return f"cannot run {runtime!r}: {err}"
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return f"'{runtime} info' did not answer within {timeout:g} s"
    if process.returncode != 0:
        lines = stderr.decode("utf-8", "replace").strip().splitlines()
        return f"'{runtime} info' failed: {lines[-1] if lines else process.returncode}"
    return None


@dataclass(frozen=True)
class Launcher:
    """The backend's configuration for turning a request into per-host commands."""

    image_commands: Mapping[str, Sequence[str]] = field(default_factory=dict)
    container_runtime: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def program(self, request: TrainingRequest) -> tuple[str, ...] | None:
        """The argv run directly on this machine, or None when only a container can run it."""
        if request.entrypoint:
            return request.entrypoint + request.arguments
        if request.image is not None:
            mapped = match_image(request.image, self.image_commands)
            if mapped is not None:
                return mapped + request.arguments
        return None

    def unrunnable(self, request: TrainingRequest, runtime_problem: str | None) -> str:
        """The FailureReason when neither a program nor a usable runtime is available."""
        reason = (
            f"ClientError: The local backend cannot run TrainingImage {request.image!r}: the "
            "request has no AlgorithmSpecification.ContainerEntrypoint and the image matches no "
            "entry of the local backend's image_commands"
        )
        if self.container_runtime is None:
            reason += ", and no container_runtime is configured"
        else:
            reason += f", and container_runtime {self.container_runtime!r} is unusable"
            reason += f" ({runtime_problem})"
        return reason + (
            ". Set ContainerEntrypoint in the request, or map the image to a command in "
            "image_commands (exact name or 'prefix*'), or configure container_runtime "
            "('docker' or 'podman') with a running engine."
        )

    def environment(
        self,
        request: TrainingRequest,
        host: str,
        base: Path,
        arn: str,
        region: str,
        *,
        hosts_resolve: bool,
    ) -> dict[str, str]:
        """The host's environment; ``SM_STUDIO_LOCAL_MODE=true`` unless host names resolve."""
        env = {"PATH": os.environ.get("PATH", os.defpath)}
        env.update(self.extra_env)
        env.update(request.environment)
        env.setdefault("AWS_DEFAULT_REGION", region)
        if not hosts_resolve:
            env.setdefault("SM_STUDIO_LOCAL_MODE", "true")
        env.update(
            SAGEMAKER_BASE_DIR=str(base),
            TRAINING_JOB_NAME=request.name,
            TRAINING_JOB_ARN=arn,
            CURRENT_HOST=host,
            AWS_REGION=region,
            BATCHD_HOST_ADDRESSES=jsontext.dumps_text(
                {name: loopback_address(name) for name in request.cluster.hosts}
            ),
        )
        return env

    def direct(self, program: Sequence[str], env: dict[str, str], base: Path) -> HostCommand:
        return HostCommand(tuple(program), env, base / "code")

    def in_container(
        self, request: TrainingRequest, host: str, env: dict[str, str], base: Path
    ) -> HostCommand:
        """``<runtime> run`` for one host; the job's variables pass by name (``-e KEY``)."""
        assert self.container_runtime is not None and request.image is not None
        runtime, name = self.container_runtime, f"{request.name}-{host}"
        inside = {k: v for k, v in env.items() if k not in ("PATH", "SAGEMAKER_BASE_DIR")}
        argv = [runtime, "run", "--rm", "--name", name, "--network", "host"]
        argv += [f"--add-host={h}:{loopback_address(h)}" for h in request.cluster.hosts]
        argv += ["-v", f"{base}:/opt/ml"]
        for key in sorted(inside):
            argv += ["-e", key]
        argv += [request.image, *(request.arguments or ("train",))]
        client_env = {"PATH": env["PATH"], **self.extra_env, **inside}
        return HostCommand(tuple(argv), client_env, base, (runtime, "rm", "-f", name))
