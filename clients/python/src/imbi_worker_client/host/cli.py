"""``imbi-plugin-host``: run the plugin host beside imbi-worker."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

import nats

from .logs import configure
from .plugins import load_plugins
from .service import PluginHost, keyring_from_env

log = logging.getLogger("imbi_worker_client.host")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="imbi-plugin-host",
        description="Run Imbi Python webhook plugins (entry points in group imbi.plugins) "
        "as a NATS service for imbi-worker (wire contract §D).",
    )
    p.add_argument("--nats-url", default=_env("IMBI_NATS_URL", "nats://127.0.0.1:4222"),
                   help="NATS server URL(s), comma-separated (IMBI_NATS_URL)")
    p.add_argument("--concurrency", type=int, default=int(_env("IMBI_HOST_CONCURRENCY", "16")),
                   help="actions run at once; more are answered 'unavailable' (IMBI_HOST_CONCURRENCY)")
    p.add_argument("--shutdown-grace", type=float,
                   default=float(_env("IMBI_HOST_SHUTDOWN_GRACE", "30")),
                   help="seconds in-flight actions may finish after SIGTERM")
    p.add_argument("--max-request-bytes", type=int, default=1 << 20,
                   help="largest run request accepted")
    p.add_argument("--log-level", default=_env("IMBI_LOG_LEVEL", "info"))
    args = p.parse_args(argv)
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    return args


async def serve(args: argparse.Namespace) -> int:
    loaded = load_plugins()
    try:
        keyring = keyring_from_env()
    except ValueError as exc:
        log.error(str(exc))
        return 2
    if keyring is None:
        log.warning("IMBI_AUTH_ENCRYPTION_KEY unset: actions of plugins with credentials will fail")
    nc = await nats.connect(servers=args.nats_url.split(","), name="imbi-plugin-host",
                            max_reconnect_attempts=-1)
    host = PluginHost(nc, loaded, concurrency=args.concurrency,
                      max_request_bytes=args.max_request_bytes, keyring=keyring)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await host.start()
    await stop.wait()
    log.info("stopping", extra={"in_flight": host.in_flight, "grace_seconds": args.shutdown_grace})
    await host.stop(args.shutdown_grace)
    await nc.drain()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure(args.log_level)
    sys.exit(asyncio.run(serve(args)))


if __name__ == "__main__":
    main()
