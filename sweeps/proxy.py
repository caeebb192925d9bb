"""``python -m sweeps.proxy --storage URL --host HOST --port PORT``: Optuna's gRPC storage proxy.

One process holds the database connections (at most ``--threads``) and serves Optuna's storage
calls to any number of workers, which use ``sweep.storage=grpc://HOST:PORT``; the workers never see
the database URL or its password. Stop it with Ctrl-C or SIGTERM (exit 0).

The channel is plain gRPC, without TLS or authentication: whoever reaches the port can read and
change every study in the database. Listen on a private network (``--host`` of that interface) or
on 127.0.0.1 behind an SSH tunnel.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import optuna

from sweeps._cli import guarded
from sweeps._errors import ConfigError, StorageError
from sweeps._heap import leave
from sweeps.storage._url import check_storage, is_grpc, is_url, mask, mask_text, open_database, probe_storage

__all__ = ["main", "wait_until_serving"]


def wait_until_serving(url: str, process: subprocess.Popen, timeout_s: float = 120.0) -> bool:
    """Waits until the proxy started as ``process`` answers at ``url`` (``grpc://HOST:PORT``).

    Returns:
        True once it answers; False if the process ended first or ``timeout_s`` passed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe_storage(url, connect_timeout_s=5)
            return True
        except StorageError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.5)


class _MaskingFormatter(logging.Formatter):
    """Log lines of gRPC and Optuna (a servicer's exception, say) with any URL password masked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sweeps.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True,
                        help="SQLAlchemy URL of the database to serve, e.g. postgresql://USER:PASSWORD@HOST/DB")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: %(default)s; 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=13000, help="port to listen on (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=16,
                        help="requests served at once, and database connections held (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MaskingFormatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    return guarded(lambda: _serve(args))


def _check(args: argparse.Namespace) -> None:
    check_storage(args.storage, key="--storage")
    if is_grpc(args.storage) or not is_url(args.storage):
        raise ConfigError(f"--storage must be the SQLAlchemy URL of a database (e.g. postgresql://USER@HOST/DB), "
                          f"got {mask(args.storage)!r}: Optuna's gRPC proxy serves neither journal files nor "
                          "another proxy")
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 1-65535, got {args.port}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    try:
        with socket.create_server((args.host, args.port)):
            pass  # free now; gRPC binds with SO_REUSEPORT, which would share a port held by another proxy
    except OSError as exc:
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen there "
                          f"({os.strerror(exc.errno) if exc.errno else exc}); choose another port or stop what "
                          "holds it") from None


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    _check(args)
    probe_storage(args.storage, key="--storage")
    backend = open_database(args.storage, pool_size=args.threads)
    address = f"{args.host}:{args.port}"
    print(f"gRPC storage proxy for {mask(args.storage)} on {address}: workers use "
          f"sweep.storage=grpc://{address}; Ctrl-C stops it", flush=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.run_grpc_proxy_server(backend, host=args.host, port=args.port,
                                                  thread_pool=ThreadPoolExecutor(max_workers=args.threads))
    except KeyboardInterrupt:
        print("gRPC storage proxy stopped", flush=True)
        return 0
    except RuntimeError as exc:  # gRPC could not bind (the address vanished or was taken meanwhile)
        raise StorageError(f"--host {args.host} --port {args.port}: {mask_text(str(exc))}") from None
    return 0


if __name__ == "__main__":
    leave(main())
