"""A throwaway (or persistent) local PostgreSQL server from the system packages.

No Docker here: the server binaries come from the distribution (Debian/Ubuntu
package `postgresql`), and each LocalPostgres runs its own cluster with `initdb`
and `pg_ctl` in its own folder and on its own free port, so it never touches the
distribution's `main` cluster on 5432.

In Python::

    with LocalPostgres(fast_unsafe=True) as pg:     # temporary cluster for tests
        pg.create_database("ledger")
        engine = create_async_engine(pg.dsn("ledger"))

From a shell (the server keeps running after the command returns)::

    python -m shared.infra.postgres_local start --data-dir .run/postgres [--port 5433]
    python -m shared.infra.postgres_local status --data-dir .run/postgres
    python -m shared.infra.postgres_local stop --data-dir .run/postgres

Security: the cluster trusts every connection (no password). That is only
acceptable because it listens on 127.0.0.1 and on a Unix socket inside its own
folder; never point `listen_addresses` elsewhere with this setup.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import quote

# asyncpg ships no type information; pyproject's mypy overrides do not list it yet.
import asyncpg  # type: ignore[import-untyped, unused-ignore]

from shared.infra._process import (
    APT_LOCK,
    file_lock,
    free_ports,
    pid_alive,
    port_is_free,
    read_tail,
    run_in_fresh_loop,
    tail,
)

__all__ = [
    "HOST",
    "PG_OS_USER",
    "SUPERUSER",
    "LocalPostgres",
    "PostgresLocalError",
    "ensure_postgres_installed",
    "find_pg_bin",
    "pg_version",
    "read_dsn",
]

HOST = "127.0.0.1"
SUPERUSER = "postgres"
# initdb and postgres refuse to run as root; as root we run them as this OS user,
# the one the Debian package creates.
PG_OS_USER = "postgres"

_PGDATA = "pgdata"
_LOG_FILE = "postgres.log"
_DSN_FILE = "dsn.txt"
_DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
_TOOLS = ("initdb", "pg_ctl", "postgres")

_T = TypeVar("_T")


class PostgresLocalError(RuntimeError):
    """The local PostgreSQL server could not be found, installed, started or stopped."""


# --------------------------------------------------------------------- binaries


def _has_tools(folder: Path) -> bool:
    return all((folder / tool).is_file() for tool in _TOOLS)


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.name)) or (0,)


def find_pg_bin() -> Path | None:
    """Folder with initdb, pg_ctl and postgres, or None.

    Order: $REBOND_PG_BIN, the highest `/usr/lib/postgresql/<version>/bin` (Debian
    keeps server tools off PATH), then initdb found on PATH.
    """
    override = os.environ.get("REBOND_PG_BIN")
    if override:
        folder = Path(override)
        return folder if _has_tools(folder) else None
    if _DEBIAN_PG_ROOT.is_dir():
        versions = sorted(
            (p for p in _DEBIAN_PG_ROOT.iterdir() if _has_tools(p / "bin")),
            key=_version_key,
            reverse=True,
        )
        if versions:
            return versions[0] / "bin"
    initdb = shutil.which("initdb")
    if initdb is not None:
        # PATH often holds symlinks (/usr/local/bin, Homebrew); the real folder has
        # postgres next to initdb.
        folder = Path(initdb).resolve().parent
        if _has_tools(folder):
            return folder
    return None


def _truthy(value: str | None) -> bool:
    return bool(value) and (value or "").strip().lower() not in {"0", "false", "no", "off"}


def ensure_postgres_installed(allow_install: bool | None = None) -> Path:
    """Return the server binaries folder, installing Debian's `postgresql` if allowed.

    Installing needs root and permission: `allow_install=True`, or (when it is None)
    the `CI` or `REBOND_ALLOW_APT_INSTALL` environment variable set, because CI
    starts on a clean machine while a developer's machine should not be changed
    behind their back.
    """
    found = find_pg_bin()
    if found is not None:
        return found
    if allow_install is None:
        allow_install = _truthy(os.environ.get("CI")) or _truthy(
            os.environ.get("REBOND_ALLOW_APT_INSTALL")
        )
    apt_get = shutil.which("apt-get")
    if allow_install and os.geteuid() == 0 and apt_get is not None:
        with file_lock(APT_LOCK):
            # Another test worker may have installed it while this one waited.
            found = find_pg_bin()
            if found is not None:
                return found
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for argv in (
                [apt_get, "update"],
                [apt_get, "install", "-y", "--no-install-recommends", "postgresql"],
            ):
                result = subprocess.run(
                    argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
                )
                if result.returncode != 0:
                    raise PostgresLocalError(
                        f"{' '.join(argv)} failed (exit {result.returncode}):\n"
                        + tail(result.stdout + result.stderr, 30)
                    )
            found = find_pg_bin()
            if found is not None:
                return found
    raise PostgresLocalError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. Install "
        "them (Debian/Ubuntu: `sudo apt-get install -y postgresql`; macOS: "
        "`brew install postgresql`) or set REBOND_PG_BIN to their folder. As root, "
        "CI=1 or REBOND_ALLOW_APT_INSTALL=1 lets the test setup install them itself."
    )


def pg_version(pg_bin: Path) -> str:
    """Server version of the binaries in `pg_bin`, e.g. "15.18"."""
    result = subprocess.run(
        [str(pg_bin / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"\)\s*(\d+(?:\.\d+)*)", result.stdout) or re.search(
        r"(\d+(?:\.\d+)+)", result.stdout
    )
    if result.returncode != 0 or match is None:
        raise PostgresLocalError(f"cannot read the version of {pg_bin / 'postgres'}")
    return match[1]


# ------------------------------------------------------------------ small helpers


def _free_port() -> int:
    return free_ports(1)[0]


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _ensure_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresLocalError(f"no OS user {PG_OS_USER!r} and no useradd to create it")
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/var/lib/postgresql",
            "--shell",
            "/usr/sbin/nologin",
            PG_OS_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PostgresLocalError(f"useradd {PG_OS_USER} failed: {result.stderr.strip()}")
    return pwd.getpwnam(PG_OS_USER)


def _as_pg_user(argv: Sequence[str]) -> list[str]:
    if not _running_as_root():
        return list(argv)
    runuser = shutil.which("runuser")
    if runuser is not None:
        return [runuser, "-u", PG_OS_USER, "--", *argv]
    return ["su", "-s", "/bin/sh", PG_OS_USER, "-c", shlex.join(argv)]


def _run_pg(argv: Sequence[str], cwd: Path, timeout: float | None = None) -> str:
    """Run a PostgreSQL tool (as the postgres OS user when root); return its output."""
    try:
        result = subprocess.run(
            _as_pg_user(argv),
            cwd=cwd,  # runuser keeps the cwd, and /root is not readable by postgres
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresLocalError(f"{Path(argv[0]).name} timed out after {timeout} s") from exc
    if result.returncode != 0:
        raise PostgresLocalError(
            f"{Path(argv[0]).name} failed (exit {result.returncode}):\n"
            + tail(result.stdout + result.stderr, 30)
        )
    return result.stdout


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_dsn(data_dir: Path) -> str | None:
    """Admin DSN written by the server started from `data_dir`, if it is running."""
    data_dir = data_dir.resolve()
    if _postmaster_pid(data_dir / _PGDATA) is None:
        return None
    try:
        return (data_dir / _DSN_FILE).read_text().strip() or None
    except OSError:
        return None


def _postmaster_pid(pgdata: Path) -> int | None:
    # postmaster.pid is removed on a clean shutdown; after a crash it stays behind
    # with a dead pid, which postgres itself also ignores on the next start.
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


# ----------------------------------------------------------------------- server


class LocalPostgres:
    """A PostgreSQL cluster of its own, listening on 127.0.0.1 only.

    `data_dir=None` uses a temporary folder deleted by `stop()`; a given folder is
    initialised once and reused (databases survive restarts). `port=None` reuses the
    previous port of a persistent folder when free, otherwise picks a free one.
    `fast_unsafe=True` turns off fsync, synchronous_commit and full_page_writes: a
    crash can corrupt the cluster, which is fine for tests and nothing else.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        fast_unsafe: bool = False,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
        pg_bin: Path | None = None,
    ) -> None:
        self._requested_dir = data_dir.resolve() if data_dir is not None else None
        self._requested_port = port
        self._fast_unsafe = fast_unsafe
        self._settings = dict(settings or {})
        self._startup_timeout = startup_timeout
        self._pg_bin = pg_bin
        self._data_dir: Path | None = self._requested_dir
        self._port: int | None = None
        self._started = False
        self._version: str | None = None

    # -- public state

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresLocalError("the server is not started")
        return self._port

    @property
    def host(self) -> str:
        return HOST

    @property
    def user(self) -> str:
        return SUPERUSER

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise PostgresLocalError("the server is not started")
        return self._data_dir

    @property
    def log_file(self) -> Path:
        return self.data_dir / _LOG_FILE

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = pg_version(self._bin())
        return self._version

    def dsn(self, database: str = "postgres") -> str:
        """SQLAlchemy URL, e.g. `postgresql+asyncpg://postgres@127.0.0.1:5433/ledger`."""
        return f"postgresql+asyncpg://{SUPERUSER}@{HOST}:{self.port}/{quote(database, safe='')}"

    def libpq_dsn(self, database: str = "postgres") -> str:
        """Plain `postgresql://` URL for asyncpg.connect, psql and other libpq tools."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{quote(database, safe='')}"

    @property
    def admin_dsn(self) -> str:
        return self.dsn("postgres")

    # -- lifecycle

    def start(self) -> Self:
        if self._started:
            raise PostgresLocalError("the server is already started")
        pg_bin = self._bin()
        self._version = pg_version(pg_bin)
        if self._requested_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="rebond-pg-"))
        else:
            data_dir = self._requested_dir
            data_dir.mkdir(parents=True, exist_ok=True)
        self._data_dir = data_dir
        pgdata = data_dir / _PGDATA

        try:
            other = _postmaster_pid(pgdata)
            if other is not None:
                raise PostgresLocalError(f"a server is already running from {pgdata} (pid {other})")
            self._prepare_dir(data_dir)
            if not (pgdata / "PG_VERSION").is_file():
                self._initdb(pg_bin, pgdata)
            port = self._choose_port(pgdata)
            log_path = data_dir / _LOG_FILE
            log_start = log_path.stat().st_size if log_path.exists() else 0
            deadline = time.monotonic() + self._startup_timeout
            self._started = True
            atexit.register(self.stop)
            try:
                # -w makes pg_ctl wait until the postmaster reports "ready".
                _run_pg(
                    [
                        str(pg_bin / "pg_ctl"),
                        "-D",
                        str(pgdata),
                        "-l",
                        str(log_path),
                        "-w",
                        "-t",
                        str(int(self._startup_timeout)),
                        "-o",
                        self._server_options(port, data_dir),
                        "start",
                    ],
                    cwd=data_dir,
                    timeout=self._startup_timeout + 10,
                )
            except PostgresLocalError as exc:
                raise PostgresLocalError(
                    f"{exc}\ntail of {log_path}:\n{read_tail(log_path, log_start)}"
                ) from None
            self._port = port
            # Then a real connection: pg_ctl's check does not prove TCP on 127.0.0.1.
            error = run_in_fresh_loop(lambda: _probe(self.libpq_dsn(), deadline))
            if error is not None:
                raise PostgresLocalError(
                    f"PostgreSQL did not accept connections: {error}\n"
                    f"tail of {log_path}:\n{read_tail(log_path, log_start)}"
                )
            (data_dir / _DSN_FILE).write_text(self.admin_dsn + "\n")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (fast shutdown, then immediate, then SIGKILL); idempotent."""
        atexit.unregister(self.stop)
        data_dir = self._data_dir
        was_started, self._started = self._started, False
        self._port = None
        if data_dir is None:
            return
        try:
            if was_started:
                _stop_cluster(self._bin(), data_dir, timeout)
        finally:
            if self._requested_dir is None:
                shutil.rmtree(data_dir, ignore_errors=True)
                self._data_dir = None

    def detach(self) -> None:
        """Leave the server running after this process exits (persistent dir only)."""
        if not self._started:
            raise PostgresLocalError("the server is not started")
        if self._requested_dir is None:
            raise PostgresLocalError("detach() needs a persistent data_dir")
        atexit.unregister(self.stop)
        self._started = False

    def create_database(self, name: str, *, exist_ok: bool = True) -> None:
        """CREATE DATABASE `name` (owned by the superuser). Blocks; see the async variant."""
        run_in_fresh_loop(lambda: self.create_database_async(name, exist_ok=exist_ok))

    async def create_database_async(self, name: str, *, exist_ok: bool = True) -> None:
        """CREATE DATABASE from async code, without blocking the event loop."""
        await _create_database(self.libpq_dsn("postgres"), name, exist_ok=exist_ok)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{HOST}:{self._port}" if self._port is not None else "stopped"
        return f"LocalPostgres({where}, data_dir={self._data_dir})"

    # -- internals

    def _bin(self) -> Path:
        if self._pg_bin is None:
            self._pg_bin = ensure_postgres_installed()
        return self._pg_bin

    def _prepare_dir(self, data_dir: Path) -> None:
        if not _running_as_root():
            return
        user = _ensure_os_user()
        # The postgres OS user writes the log and the Unix socket next to pgdata.
        os.chown(data_dir, user.pw_uid, user.pw_gid)
        os.chmod(data_dir, 0o700)
        log_path = data_dir / _LOG_FILE
        if log_path.exists():
            os.chown(log_path, user.pw_uid, user.pw_gid)
        probe = subprocess.run(
            _as_pg_user(["test", "-w", str(data_dir)]), cwd="/", capture_output=True, check=False
        )
        if probe.returncode != 0:
            raise PostgresLocalError(
                f"the {PG_OS_USER!r} OS user cannot reach {data_dir}: every parent folder "
                "must be searchable by it (chmod o+x), or choose a folder under /tmp"
            )

    def _initdb(self, pg_bin: Path, pgdata: Path) -> None:
        argv = [
            str(pg_bin / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            SUPERUSER,
            # Local only: the server listens on 127.0.0.1 and a private socket folder.
            "--auth=trust",
            "--encoding=UTF8",
            # The C locale exists everywhere and makes sorting independent of the host.
            "--no-locale",
        ]
        if self._fast_unsafe:
            argv.append("--no-sync")
        _run_pg(argv, cwd=pgdata.parent, timeout=120)

    def _choose_port(self, pgdata: Path) -> int:
        if self._requested_port is not None:
            if not port_is_free(self._requested_port):
                raise PostgresLocalError(f"port {self._requested_port} on {HOST} is in use")
            return self._requested_port
        # postmaster.opts keeps the command line of the last start, port included.
        try:
            opts = (pgdata / "postmaster.opts").read_text()
        except OSError:
            opts = ""
        match = re.search(r'"-p" "(\d+)"', opts)
        if match and port_is_free(int(match[1])):
            return int(match[1])
        return _free_port()

    def _server_options(self, port: int, data_dir: Path) -> str:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(data_dir),
        }
        if self._fast_unsafe:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        settings |= self._settings
        # pg_ctl hands this string to /bin/sh, hence the quoting.
        parts = ["-p", str(port)]
        for key, value in settings.items():
            parts += ["-c", f"{key}={value}"]
        return shlex.join(parts)


def _stop_cluster(pg_bin: Path, data_dir: Path, timeout: float) -> None:
    pgdata = data_dir / _PGDATA
    if _postmaster_pid(pgdata) is None:
        (data_dir / _DSN_FILE).unlink(missing_ok=True)
        return
    pg_ctl = str(pg_bin / "pg_ctl")
    try:
        for mode in ("fast", "immediate"):
            try:
                _run_pg(
                    [pg_ctl, "-D", str(pgdata), "-m", mode, "-w", "-t", str(int(timeout)), "stop"],
                    cwd=data_dir,
                    timeout=timeout + 10,
                )
                return
            except PostgresLocalError:
                continue
        pid = _postmaster_pid(pgdata)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                raise PostgresLocalError(f"postmaster {pid} survived SIGKILL")
    finally:
        (data_dir / _DSN_FILE).unlink(missing_ok=True)


async def _create_database(admin_dsn: str, name: str, *, exist_ok: bool) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            if not exist_ok:
                raise PostgresLocalError(f"database {name!r} already exists")
            return
        # CREATE DATABASE takes no bind parameters; the name is quoted instead.
        await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
    finally:
        await conn.close()


def _create_database_sync(admin_dsn: str, name: str) -> None:
    run_in_fresh_loop(lambda: _create_database(admin_dsn, name, exist_ok=True))


async def _probe(dsn: str, deadline: float) -> str | None:
    """None once a real connection runs a query, else the last error."""
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except Exception as exc:  # any failure here only means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.2)
            continue
        try:
            await conn.fetchval("SELECT 1")
            return None
        finally:
            await conn.close()
    return last_error


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.infra.postgres_local",
        description="A local PostgreSQL server on 127.0.0.1 from the system packages.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a detached server, print its admin DSN")
    start.add_argument("--data-dir", type=Path, required=True)
    start.add_argument("--port", type=int, default=None)
    start.add_argument("--timeout", type=float, default=60.0, help="startup timeout (s)")
    start.add_argument(
        "--fast-unsafe",
        action="store_true",
        help="fsync/synchronous_commit/full_page_writes off (a crash can lose the data)",
    )
    start.add_argument(
        "--database",
        action="append",
        default=[],
        metavar="NAME",
        help="create this database if missing (repeatable)",
    )
    stop = commands.add_parser("stop", help="stop the server started from --data-dir")
    stop.add_argument("--data-dir", type=Path, required=True)
    status = commands.add_parser("status", help="exit 0 and print the DSN if running")
    status.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    data_dir: Path = args.data_dir.resolve()
    try:
        if args.command == "start":
            server = LocalPostgres(
                data_dir, port=args.port, fast_unsafe=args.fast_unsafe, startup_timeout=args.timeout
            )
            dsn = read_dsn(data_dir)
            if dsn is None:
                server.start()
                dsn = server.admin_dsn
                for name in args.database:
                    server.create_database(name)
                server.detach()
            else:
                admin = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
                for name in args.database:
                    _create_database_sync(admin, name)
            print(dsn)
            return 0
        if args.command == "stop":
            pgdata = data_dir / _PGDATA
            running = _postmaster_pid(pgdata) is not None
            if running:
                _stop_cluster(ensure_postgres_installed(), data_dir, 30.0)
            else:
                (data_dir / _DSN_FILE).unlink(missing_ok=True)
            print("stopped" if running else "not running")
            return 0
        dsn = read_dsn(data_dir)
        if dsn is None:
            print("not running")
            return 1
        print(f"running (pid {_postmaster_pid(data_dir / _PGDATA)}) at {dsn}")
        return 0
    except PostgresLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
