"""``batchd serve`` and friends."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from batchd.errors import StartupError
from batchd.settings import DEFAULTS, Settings

__all__ = ["build_parser", "main", "serve_settings"]

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")  # logging's and uvicorn's


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchd", description="Self-hosted AWS Batch service jobs for SageMaker training"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{serve,logs,simulate,export}"
    )
    # An option left out stays out of the namespace, so Settings supplies its default: the
    # defaults are written there only, and the help below reads them from there.
    serve = sub.add_parser(
        "serve", help="run the API server and the scheduler", argument_default=argparse.SUPPRESS
    )
    serve.add_argument("--host", help=f"address to listen on (default {DEFAULTS.host})")
    serve.add_argument("--port", type=int, help=f"(default {DEFAULTS.port})")
    serve.add_argument(
        "--data-dir", type=Path, help=f"state and job files (default {DEFAULTS.data_dir})"
    )
    serve.add_argument(
        "--db",
        dest="db_url",
        metavar="URL",
        help="database URL (default: SQLite in the data dir); postgresql://...",
    )
    serve.add_argument("--region", help=f"(default {DEFAULTS.region})")
    serve.add_argument("--account-id", help=f"(default {DEFAULTS.account_id})")
    serve.add_argument(
        "--backend",
        choices=["local", "fake", "kubernetes"],
        help=f"where jobs run unless their environment's batchd:backend tag says otherwise "
        f"(default {DEFAULTS.backend})",
    )
    serve.add_argument(
        "--tick-seconds",
        type=float,
        help=f"scheduler period when nothing wakes it (default {DEFAULTS.tick_seconds})",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port; one schedules, all serve the API (default 1)",
    )
    serve.add_argument(
        "--image-command",
        dest="image_commands",
        action="append",
        metavar="IMAGE=COMMAND",
        help="run payloads naming only TrainingImage IMAGE (or a 'prefix*') as COMMAND on this "
        "machine, e.g. 'my-image:*=python3 -m sagemaker_training.cli.train'; repeatable",
    )
    serve.add_argument(
        "--s3-endpoint-url",
        help="S3-compatible endpoint for s3:// URIs (default: files under DATA_DIR/s3)",
    )
    serve.add_argument(
        "--container-runtime",
        choices=["docker", "podman"],
        help="for payloads naming only an image (default: none)",
    )
    serve.add_argument(
        "--hosts-file",
        type=_hosts_file,
        help="where algo-N host names are added for multi-instance jobs ('none': never; "
        f"default {DEFAULTS.hosts_file})",
    )
    serve.add_argument(
        "--stop-grace-seconds",
        type=float,
        help=f"from SIGTERM to SIGKILL (default {DEFAULTS.stop_grace_seconds})",
    )
    _kubernetes_options(serve)
    serve.add_argument(
        "--max-submitted-per-queue",
        type=int,
        help=f"(default {DEFAULTS.max_submitted_per_queue})",
    )
    serve.add_argument(
        "--access-keys-file",
        type=Path,
        default=None,
        help="verify SigV4 signatures against ID:SECRET entries in this file "
        "(or set BATCHD_ACCESS_KEYS); off by default",
    )
    serve.add_argument(
        "--request-log",
        action="store_true",
        help="log one line per request: operation, status, latency, request id, access key id",
    )
    serve.add_argument("--log-level", choices=_LOG_LEVELS, default="info")
    worker = sub.add_parser("_worker")  # one process of `serve --workers N`
    worker.add_argument("--log-level", choices=_LOG_LEVELS, default="info")
    logs = sub.add_parser("logs", help="print the output of a job's training processes")
    logs.add_argument("job_id", help="service job id or ARN")
    logs.add_argument("--attempt", type=int, default=None, help="1-based; default: the latest")
    logs.add_argument("--host", default=None, help="algo-N; default: every host")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    logs.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL_BATCH")
        or os.environ.get("AWS_ENDPOINT_URL")
        or f"http://{DEFAULTS.host}:{DEFAULTS.port}",
    )
    from batchd.simulate.command import add_parsers

    add_parsers(sub)
    _add_container_parser(sub)
    return parser


def _kubernetes_options(serve: argparse.ArgumentParser) -> None:
    kube = serve.add_argument_group(
        "kubernetes backend",
        "--backend kubernetes runs every environment's jobs on a cluster; with another "
        "--backend, --kubeconfig or --kubernetes-namespace offers the kubernetes backend to "
        "environments tagged batchd:backend=kubernetes",
    )
    kube.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="PATH",
        help="default: in-cluster in a pod, else ~/.kube/config",
    )
    kube.add_argument(
        "--kubernetes-namespace",
        metavar="NS",
        help="where attempts run (default: the context's, or default)",
    )
    kube.add_argument(
        "--kubernetes-batchd-image",
        metavar="IMAGE",
        help="image of batchd's staging and packing steps in each pod "
        f"(default {DEFAULTS.kubernetes_batchd_image}; build it from the Dockerfile)",
    )
    kube.add_argument(
        "--kubernetes-instance-types",
        type=Path,
        metavar="FILE",
        help="JSON: ml.* instance type -> requests, nodeSelector, tolerations (over the table)",
    )
    kube.add_argument(
        "--kubernetes-unschedulable-seconds",
        type=float,
        metavar="SECONDS",
        help="how long a pod may stay unschedulable before the attempt is a capacity error "
        f"and requeued (default {DEFAULTS.kubernetes_unschedulable_seconds:.0f})",
    )


def _add_container_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Left out of `batchd --help` (no help=): people do not run these, pods do.
    container = sub.add_parser(
        "container",
        description="Steps batchd runs inside the Kubernetes pods of a training attempt, "
        "configured by the environment the Kubernetes backend gives each pod (see "
        "batchd.backends.kubernetes.container). Exit 0 on success; 1 on failure, with the "
        "reason on stderr and in the termination log.",
    )
    steps = container.add_subparsers(dest="step", required=True, metavar="{stage,finish}")
    steps.add_parser(
        "stage",
        help="before training: write input/config/*.json, download code and channel data",
    )
    steps.add_parser(
        "finish",
        help="after training, on algo-1: upload model.tar.gz and output.tar.gz",
    )


def _hosts_file(value: str) -> Path | None:
    return None if value == "none" else Path(value)


def serve_settings(args: argparse.Namespace) -> Settings:
    """The settings ``serve`` options ask for; Settings' defaults for the options left out."""
    options = dict(vars(args))
    if "image_commands" in options:
        options["image_commands"] = _image_commands(options["image_commands"])
    fields = {field.name for field in dataclasses.fields(Settings)}
    given = {name: value for name, value in options.items() if name in fields}
    return Settings(**given, access_keys=_access_keys(args.access_keys_file))


def _serve(args: argparse.Namespace) -> int:
    from batchd.wiring import migrate
    from batchd.workers import run_workers, serve_alone

    try:
        if args.workers < 1:
            raise StartupError(f"--workers must be at least 1, got {args.workers}")
        settings = serve_settings(args)
    except StartupError as err:
        print(f"batchd: {err.message}", file=sys.stderr)
        return 2
    _configure_logging(args.log_level)
    if args.workers > 1:
        # Workers are separate processes: they rebuild the app from settings their parent
        # hands them, after the parent has migrated the database once.
        try:
            asyncio.run(migrate(settings))
        except StartupError as err:
            print(f"batchd: {err}", file=sys.stderr)
            return 3
        return run_workers(settings, args.workers, args.log_level)
    return serve_alone(settings, args.log_level)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _image_commands(entries: list[str]) -> dict[str, tuple[str, ...]]:
    commands: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        image, sep, command = entry.partition("=")
        if not sep or not image or not command.strip():
            raise StartupError(f"--image-command {entry!r} is not IMAGE=COMMAND")
        try:
            commands[image] = tuple(shlex.split(command))
        except ValueError as err:  # an unclosed quote
            raise StartupError(f"--image-command {entry!r}: {err}") from err
    return commands


def _access_keys(path: Path | None) -> dict[str, str]:
    from batchd.api.auth import load_keys

    source = "BATCHD_ACCESS_KEYS" if path is None else f"--access-keys-file {path}"
    try:
        text = os.environ.get("BATCHD_ACCESS_KEYS", "") if path is None else path.read_text()
        return load_keys(text)
    except (OSError, ValueError) as err:  # ValueError: a malformed entry, or not UTF-8
        raise StartupError(f"{source}: {err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "_worker":  # started by `serve --workers N`, not by people
        from batchd.workers import serve_worker

        _configure_logging(args.log_level)
        return serve_worker(args.log_level)
    if args.command == "logs":
        from batchd.logs_client import print_logs

        return print_logs(args.endpoint_url, args.job_id, args.attempt, args.host, args.follow)
    if args.command == "container":
        from batchd.backends.kubernetes.container import run_step

        return run_step(args.step)
    if args.command in ("simulate", "export"):
        from batchd.simulate import command

        return (
            command.run_simulate(args) if args.command == "simulate" else command.run_export(args)
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
