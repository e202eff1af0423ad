"""``prodorder-api serve --workers N``: N uvicorn processes, each on its own socket.

uvicorn's own multi-worker mode shares one listening socket, and whichever worker
wakes first accepts a whole burst of new connections. Keep-alive clients that
connect together (an ERP opening its pool, a load balancer, ``make bench``) then
mostly land on one worker, which runs at 100 % of a core while the others idle;
``make bench`` saw exactly that (one worker at 99 %, the other at 2 %). Here each
worker binds its own socket with ``SO_REUSEPORT``, and the kernel spreads new
connections evenly over them.

The parent binds the address first (without listening, so it is never handed a
connection): a port that is taken fails at once instead of in every worker. It
restarts a worker that dies, gives up when workers keep dying at start-up, and
passes SIGINT and SIGTERM on, so each worker shuts down gracefully.
"""

import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("prodorder_api.serve")

STARTUP_FAILURES = 3  # workers that die within START_GRACE_S of starting, in a row
START_GRACE_S = 10.0


def run(app: str, host: str, port: int, workers: int, **config: Any) -> None:
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, **config)
        return
    family, address = _address(host, port)
    holder = _socket(family, address)  # fails fast; never listens
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_worker, args=(app, family, address, config))
        process.start()
        return process, time.monotonic()

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process, _ in running:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signum)  # each worker shuts down gracefully

    running = [start() for _ in range(workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"prodorder-api: {workers} workers on {host}:{port} (SO_REUSEPORT)",
        file=sys.stderr,
        flush=True,
    )
    failures = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for n, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                quick = time.monotonic() - started < START_GRACE_S
                failures = failures + 1 if quick else 0
                if failures >= STARTUP_FAILURES:
                    log.error("workers keep dying at start-up; giving up")
                    stop(signal.SIGTERM, None)
                    sys.exit(1)
                log.warning("worker %s exited (%s); restarting", process.pid, process.exitcode)
                running[n] = start()
    finally:
        for process, _ in running:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        holder.close()


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return family, address


def _socket(family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


def _worker(
    app: str, family: socket.AddressFamily, address: tuple[Any, ...], config: dict[str, Any]
) -> None:
    sock = _socket(family, address)
    uvicorn.Server(uvicorn.Config(app, **config)).run(sockets=[sock])
