"""The measured web server: ``imagetrail``'s own ``serve`` over a ledger, in its own process.

Run as a script (``python bench/web_child.py LEDGER --port N [--source DIR]``) so it imports
nothing of the benchmark: only imagetrail, from ``--source`` (the run's snapshot of
``src/``) when given. Settings come from the flags alone — no ``IMAGETRAIL_*`` variable or
config file of the machine can change what is measured.

``--tcp-proto`` is an experiment, not the product: the listening socket is made with
``proto=IPPROTO_TCP``. asyncio sets ``TCP_NODELAY`` on accepted connections only when the
listening socket says it is TCP (``sock.proto == IPPROTO_TCP``), and ``socket.socket(family,
SOCK_STREAM)`` says 0; without ``TCP_NODELAY`` a keep-alive response written as headers then
body waits for the client's delayed ACK (40 ms on Linux).
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Serve the ledger read-only on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(prog="web_child")
    parser.add_argument("ledger", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", type=Path, default=None, help="import imagetrail from here")
    parser.add_argument("--tcp-proto", action="store_true", help="listen with IPPROTO_TCP")
    args = parser.parse_args(argv)
    if args.source is not None:
        sys.path.insert(0, str(args.source))

    from imagetrail import settings
    from imagetrail.errors import ConfigError
    from imagetrail.ledger import Ledger
    from imagetrail.web import server
    from imagetrail.web.server import serve

    if args.tcp_proto:
        shipped = server.bind

        def bind(host: str, port: int) -> socket.socket:
            sock = shipped(host, port)
            fixed = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            fixed.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.close()  # the shipped bind checked the port; now listen on it for real
            fixed.bind((host, port))
            fixed.listen(128)
            return fixed

        server.bind = bind

    resolved = settings.load(
        {"ledger": str(args.ledger), "host": "127.0.0.1", "port": args.port}, environ={}
    )
    ledger = Ledger.open(args.ledger, create=False)
    try:
        serve(resolved, ledger, sync=False, on_listen=lambda url: print(url, flush=True))
    except ConfigError as exc:
        # The starter retries on another port when it reads this phrase in the log.
        reason = "address already in use" if "in use" in exc.message else "cannot serve"
        print(f"{reason}: {exc.message}", flush=True)
        return 1
    finally:
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
