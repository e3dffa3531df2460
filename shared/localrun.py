"""What a running `make run` tells the commands run beside it.

While it runs, `deploy/local/run.py` keeps `<data dir>/local-run.json` (removed on exit)::

    {"pid": 4242, "pid_start": 1234567, "bootstrap_servers": "127.0.0.1:40211",
     "data_dir": "/home/me/rebond/.run", "topic_prefix": "",
     "http_ports": {"site_registry": 8001, …, "web": 8005}}

so that `python -m services.site_registry import-sirene …`, `… rebuild-ledger`,
`… redrive` find its embedded broker (on a port of its choosing) and its SQLite files
without any variable: `shared/settings.py` reads the file as its lowest-priority source.
The file counts only while the process that wrote it is alive (same pid *and* same start
time, so a pid reused after a crash or a reboot is not taken for it).

Where it is looked for: in the data dir the environment names (`<PREFIX>DATA_DIR`, else
`REBOND_DATA_DIR`), else in the checkout's `.run/` — `make run`'s default `--data-dir`.

Nothing is read at import time; `read()` reads one file (and `/proc/<pid>/stat`).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shared.infra._process import pid_alive as process_alive

__all__ = [
    "DATA_DIR_VAR",
    "FILE_NAME",
    "LocalRun",
    "default_data_dir",
    "pid_alive",
    "process_start",
    "read",
    "remove",
    "run_file",
    "write",
]

FILE_NAME = "local-run.json"
#: the one variable that points the commands (and their SQLite files) at another data dir
DATA_DIR_VAR = "REBOND_DATA_DIR"


@dataclass(frozen=True)
class LocalRun:
    pid: int
    bootstrap_servers: str
    data_dir: str
    topic_prefix: str = ""
    #: the writer's start time (clock ticks since boot, /proc/<pid>/stat field 22)
    pid_start: int | None = None
    #: where each HTTP process listens (service name → port), for the tools that drive
    #: the running system through its APIs (`make demo`); empty from an older writer
    http_ports: dict[str, int] = field(default_factory=dict)


def default_data_dir() -> Path:
    """`$REBOND_DATA_DIR`, else `.run/` at the root of this checkout (`make run`'s default)."""
    override = os.environ.get(DATA_DIR_VAR)
    return Path(override) if override else Path(__file__).resolve().parents[1] / ".run"


def run_file(data_dir: str | Path | None = None) -> Path:
    return Path(data_dir if data_dir is not None else default_data_dir()) / FILE_NAME


def process_start(pid: int) -> int | None:
    """Start time of a live (not zombie) process in clock ticks since boot; None if gone
    or unknown (no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def pid_alive(pid: int, start: int | None = None) -> bool:
    """True while `pid` runs (and, when `start` is given and /proc tells, started then:
    a pid reused by another program is not the writer)."""
    if pid <= 0 or not process_alive(pid):
        return False
    now = process_start(pid)
    return start is None or now is None or now == start


def read(data_dir: str | Path | None = None) -> LocalRun | None:
    """The running `make run` of `data_dir` (default: `default_data_dir()`), or None when
    there is no file, it is unreadable, or its writer has stopped."""
    try:
        raw = json.loads(run_file(data_dir).read_text(encoding="utf-8"))
        found = LocalRun(
            pid=int(raw["pid"]),
            bootstrap_servers=str(raw["bootstrap_servers"]),
            data_dir=str(raw["data_dir"]),
            topic_prefix=str(raw.get("topic_prefix") or ""),
            pid_start=int(raw["pid_start"]) if raw.get("pid_start") is not None else None,
            http_ports={str(k): int(v) for k, v in (raw.get("http_ports") or {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not found.bootstrap_servers or not pid_alive(found.pid, found.pid_start):
        return None
    return found


def write(data_dir: str | Path, run: LocalRun) -> Path:
    """Write the file atomically (a reader never sees half of it)."""
    path = run_file(data_dir)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    temporary.write_text(json.dumps(asdict(run), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def remove(data_dir: str | Path, pid: int) -> None:
    """Remove the file if `pid` wrote it (never another run's)."""
    path = run_file(data_dir)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == pid:
            path.unlink()
