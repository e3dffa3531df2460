"""`make run`'s guardian: stops what `run.py` started if `run.py` dies without doing it.

`run.py` stops its children itself on SIGTERM, SIGHUP, SIGINT or an error. A SIGKILL (or
the OOM killer) gives it no chance: its services then get SIGTERM from the kernel
(PR_SET_PDEATHSIG), but the embedded Kafka broker is started by `LocalKafka`, which has no
such hook, and a service may ignore SIGTERM. This small process covers both.

It reads JSON lines on stdin, whose other end only `run.py` holds:

    {"group": <pid>, "start": <start time>}   a process group to stop (its leader)
    {"kafka": "<dir>"}                        the data dir of the embedded broker
    {"file": "<dir>", "pid": <pid>}           the `local-run.json` run.py keeps in <dir>
    {"done": true}                            run.py stopped everything itself: exit

End of file without `done` means `run.py` is gone: SIGTERM every group still alive (a
pid reused by another process has another start time and is left alone), SIGKILL what
is left after a grace period, stop the broker, remove the file, exit.

It runs in its own session, so a Ctrl-C in the terminal (meant for `run.py`, which stops
everything in order) does not reach it, and it keeps `make run`'s lock on the data dir
(file descriptor given as its argument) until it is done, so that a new `make run`
cannot start while the previous one's processes are still being stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 15.0


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from shared import localrun

    # argv[0] is the data dir's lock, inherited open: held until this process exits.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)

    groups: dict[int, int | None] = {}
    kafka_dirs: list[Path] = []
    files: list[tuple[Path, int]] = []
    for raw in sys.stdin:
        try:
            order = json.loads(raw)
        except ValueError:
            continue
        if order.get("done"):
            return 0
        if "group" in order:
            groups[int(order["group"])] = order.get("start")
        elif "kafka" in order:
            kafka_dirs.append(Path(order["kafka"]))
        elif "file" in order:
            files.append((Path(order["file"]), int(order["pid"])))

    # run.py is gone without saying "done".
    log(f"make run is gone; stopping {len(groups)} process group(s) and its broker")
    alive = {pid: start for pid, start in groups.items() if localrun.pid_alive(pid, start)}
    for pid in alive:
        signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {pid: start for pid, start in alive.items() if localrun.pid_alive(pid, start)}
    for pid in alive:
        log(f"process group {pid} survived SIGTERM for {GRACE_S:.0f} s: SIGKILL")
        signal_group(pid, signal.SIGKILL)
    for folder in kafka_dirs:
        from shared.infra.kafka_local import KafkaLocalError, stop_detached

        try:
            if stop_detached(folder):
                log(f"stopped the broker of {folder}")
        except KafkaLocalError as exc:
            log(f"could not stop the broker of {folder}: {exc}")
    for folder, pid in files:
        localrun.remove(folder, pid)
    return 0


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        log(f"not allowed to signal process group {pid}")


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} [rebond guardian] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
