"""Helpers the local Kafka and PostgreSQL launchers share: logs, ports, processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import os
import socket
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

HOST = "127.0.0.1"
_T = TypeVar("_T")


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def read_tail(path: Path, start: int = 0, lines: int = 60) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            return tail(handle.read().decode(errors="replace"), lines)
    except OSError:
        return "(no log)"


def run_in_fresh_loop(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    # A worker thread with its own loop lets the sync API be used both from plain code
    # and from inside a running event loop (pytest-asyncio fixtures).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def free_ports(count: int) -> list[int]:
    # All sockets stay open until every port is picked so that the ports differ.
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR on listeners; mirror it so TIME_WAIT after a stop does
        # not make us abandon the previous port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A detached server is reaped by init; where PID 1 does not reap (some containers)
    # the zombie would otherwise look alive forever.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) across processes.

    Parallel test workers on a clean machine may all want one download or one install
    (the Kafka jars, a Debian package); one does it while the others wait, then find it
    done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: one apt-get at a time on this machine (dpkg's own lock would fail the second)
APT_LOCK = Path(tempfile.gettempdir()) / "rebond-apt-get.lock"
