"""The two steps batchd runs inside each training pod, around the training container.

``stage`` (first init container) lays out ``SAGEMAKER_BASE_DIR`` (``/opt/ml``) for this pod's
host as a local attempt lays out that host's directory: the same three config files, byte for
byte (``network_interface_name`` is the pod's ``eth0``), the submit directory in ``code/``, and
this host's share of every channel in ``input/data/<channel>/``.

``finish`` (the main container, so it runs after training succeeded) uploads, on the first host
only, ``model/`` and ``output/data/`` as the local backend does:
``<S3OutputPath>/<TrainingJobName>/output/model.tar.gz`` and ``.../output/output.tar.gz``.
Each pod has its own volume, so only the first host's files are packed; a local attempt merges
every host's.

A failing step exits 1 with its reason on one line in the termination log (see
``container_env.termination_log``) and on stderr, worded as the local backend words the
same failure, so the attempt's FailureReason reads the same on either backend.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from batchd.backends.kubernetes.container_env import (
    PodContext,
    StepError,
    read_context,
    termination_log,
)
from batchd.backends.local.artifacts import output_prefix, upload_failure, upload_from
from batchd.backends.local.attempt import FAILURE_REASON_LIMIT
from batchd.backends.local.channels import StagingError, stage_host_channels
from batchd.backends.local.objectstore import ObjectStoreError
from batchd.backends.local.sourcedir import stage_source_into
from batchd.backends.local.workspace import build_host

__all__ = ["POD_NETWORK_INTERFACE", "STEPS", "finish", "run_step", "stage"]

POD_NETWORK_INTERFACE = "eth0"


def stage(context: PodContext) -> None:
    """Write this host's config files and stage its code and input data (blocking)."""
    root, request, host = context.root, context.request, context.host
    build_host(root, request, host, POD_NETWORK_INTERFACE)
    _open_to_training(root)
    with _scratch(root) as scratch:
        stage_source_into(context.store, request, Path(scratch), [root])
    stage_host_channels(context.store, request, {host: root})
    _say(
        f"{host}: wrote {root / 'input' / 'config'}/{{hyperparameters,inputdataconfig,"
        "resourceconfig}.json"
    )
    for channel in request.channels:
        files, size = _count(root / "input" / "data" / channel.name)
        _say(f"{host}: channel {channel.name}: {files} files, {size} bytes from {channel.uri}")


def finish(context: PodContext) -> None:
    """On the first host, upload the model and output data (blocking); elsewhere nothing."""
    request, root = context.request, context.root
    if not context.first_host:
        _say(f"{context.host}: nothing to upload (the first host uploads the artifacts)")
        return
    try:
        with _scratch(root) as scratch:
            model = upload_from(context.store, request, [root], Path(scratch))
    except (ObjectStoreError, OSError, tarfile.TarError) as err:
        raise StepError(upload_failure(err)) from err
    _say(f"{context.host}: uploaded {root / 'model'} to {model}")
    _say(
        f"{context.host}: uploaded {root / 'output' / 'data'} to "
        f"{output_prefix(request).child('output.tar.gz')}"
    )


STEPS: dict[str, Callable[[PodContext], None]] = {"stage": stage, "finish": finish}


def run_step(name: str, environ: Mapping[str, str] | None = None) -> int:
    """Run step ``name`` with the pod's environment; 0 when it succeeded, 1 with the reason
    written to the termination log and stderr when it failed."""
    environ = os.environ if environ is None else environ
    try:
        STEPS[name](read_context(environ))
    except (StepError, StagingError) as err:
        reason = str(err)
    except Exception as err:  # an unexpected OS error or a bug: as the local attempt reports it
        traceback.print_exc()
        reason = f"InternalServerError: {err}"
    else:
        return 0
    line = " ".join(reason.split())[:FAILURE_REASON_LIMIT]
    print(line, file=sys.stderr, flush=True)
    _write_termination_log(termination_log(environ), line, name)
    return 1


def _write_termination_log(path: Path, line: str, step: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n", encoding="utf-8")
    except OSError as err:
        print(f"batchd container {step}: cannot write {path}: {err}", file=sys.stderr)


def _scratch(root: Path) -> tempfile.TemporaryDirectory[str]:
    """A directory for downloads and archives on the pod's volume, beside (not inside) the
    trees the job sees: the image's own file system may be read-only or small."""
    return tempfile.TemporaryDirectory(prefix=".batchd-", dir=root)


def _open_to_training(root: Path) -> None:
    """Let the training container write where SageMaker lets it, whichever user its image runs
    as: this step runs as the batchd image's user, and the volume is the pod's own."""
    for sub in _TRAINING_WRITES:
        path = root / sub
        if path.stat().st_uid == os.geteuid():
            path.chmod(0o777)


_TRAINING_WRITES = ("model", "output", "output/data", "output/intermediate", "checkpoints", "code")


def _count(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            files += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return files, size


def _say(text: str) -> None:
    print(f"[batchd] {text}", flush=True)
