"""``batchd serve`` and friends."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from batchd.errors import InvalidParameter
from batchd.settings import Settings, default_data_dir

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchd", description="Self-hosted AWS Batch service jobs for SageMaker training"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server and the scheduler")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"state and job files (default {default_data_dir()})",
    )
    serve.add_argument(
        "--db",
        default=None,
        help="database URL (default: SQLite in the data dir); postgresql://...",
    )
    serve.add_argument("--region", default="us-east-1")
    serve.add_argument("--account-id", default="123456789012")
    serve.add_argument("--backend", choices=["local", "fake"], default="local")
    serve.add_argument("--tick-seconds", type=float, default=1.0)
    serve.add_argument(
        "--access-keys-file",
        type=Path,
        default=None,
        help="verify SigV4 signatures against ID:SECRET entries in this file "
        "(or set BATCHD_ACCESS_KEYS); off by default",
    )
    serve.add_argument("--log-level", default="info")
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from batchd.wiring import build_app

    try:
        keys = _access_keys(args.access_keys_file)
        settings = Settings(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir or default_data_dir(),
            db_url=args.db,
            region=args.region,
            account_id=args.account_id,
            backend=args.backend,
            tick_seconds=args.tick_seconds,
            access_keys=keys,
        )
    except InvalidParameter as err:
        print(f"batchd: {err.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:
        print(f"batchd: cannot read access keys: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=False,
    )
    return 0


def _access_keys(path: Path | None) -> dict[str, str]:
    from batchd.api.auth import load_keys

    if path is not None:
        return load_keys(path.read_text())
    return load_keys(os.environ.get("BATCHD_ACCESS_KEYS", ""))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
