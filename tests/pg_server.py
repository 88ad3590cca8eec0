"""A throwaway PostgreSQL server for tests, run from the installed binaries.

The postmaster runs in the foreground as our child (not daemonised by `pg_ctl start`), with a
parent-death signal: if the test process dies, even by SIGKILL, the server shuts down too.
`atexit` stops it on an ordinary exit or Ctrl-C. PostgreSQL refuses to run as root, so as root
the files belong to, and the server runs as, the `postgres` user.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

SERVICE_USER = "postgres"
# Durability is pointless for a test database; these make it fast. Benchmarks start a durable one.
FAST_SETTINGS = ("-F", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
COMMON_SETTINGS = ("-c", "max_connections=200")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, and no way to install them."""


class PostgresServer:
    """One running server with trust authentication on 127.0.0.1, stopped by `stop()` or at exit."""

    def __init__(self, root: Path, port: int, process: subprocess.Popen[bytes], bindir: Path,
                 run_as: list[str], owns_root: bool) -> None:
        self.root = root
        self.port = port
        self._process = process
        self._bindir = bindir
        self._run_as = run_as
        self._owns_root = owns_root
        self._stopped = False
        atexit.register(self.stop)

    @classmethod
    def start(cls, base_dir: Path, *, durable: bool = False) -> PostgresServer:
        """Initialise a cluster under `base_dir` (or a temp dir the server user can reach) and start it;
        returns once it accepts connections. `durable` keeps PostgreSQL's fsync defaults (for benchmarks)."""
        bindir = find_bindir()
        as_root = os.geteuid() == 0
        run_as = _run_as_prefix()
        owns_root = as_root and not _reachable_by(run_as, base_dir)
        root = Path(tempfile.mkdtemp(prefix="tams-test-pg-", dir=None if owns_root else base_dir))
        data, sockets = root / "data", root / "sockets"
        try:
            for path in (data, sockets):
                path.mkdir(mode=0o700)
            if as_root:
                _chown_tree(root, SERVICE_USER)
            _initdb(bindir, data, run_as)
        except BaseException:
            if owns_root:
                shutil.rmtree(root, ignore_errors=True)
            raise
        port = _free_port()
        # With setpriv the server also gets a parent-death signal: it shuts down if we are killed.
        guard = ["--pdeathsig", "INT"] if run_as[:1] == ["setpriv"] else []
        command = [*run_as, *guard, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                   "-k", str(sockets), "-c", "listen_addresses=127.0.0.1", *COMMON_SETTINGS,
                   *(() if durable else FAST_SETTINGS)]
        with open(root / "postgres.log", "ab") as log:  # opened by us: the server needs no rights to `root`
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        server = cls(root, port, process, bindir, run_as, owns_root)
        try:
            server._wait_until_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/{database}"

    async def fresh_database(self) -> str:
        """A new empty database with a unique name; returns its DSN."""
        name = f"tams_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)

    def stop(self) -> None:
        """Fast shutdown (disconnects clients, no waiting for them); safe to call again."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if self._process.poll() is None:
            subprocess.run([*self._run_as, str(self._bindir / "pg_ctl"), "stop", "-D", str(self.root / "data"),
                            "-m", "fast", "-w", "-t", "30"], capture_output=True, check=False)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.root / "postgres.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _wait_until_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self._process.returncode}:\n{self.log_tail()}")
            ready = subprocess.run([str(self._bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                                    "-U", SERVICE_USER], check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections within {timeout_s}s:\n{self.log_tail()}")


def find_bindir() -> Path:
    """The server binaries: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin, else install
    them with apt-get (root only)."""
    found = _installed_bindir()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("PostgreSQL server not found; running: apt-get update && apt-get install -y postgresql", flush=True)
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "postgresql"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = _installed_bindir()
    if found is None:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, postgres, pg_ctl) not found: install the "
                                  "`postgresql` package or put pg_config on PATH")
    return found


def _installed_bindir() -> Path | None:
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version_of(Path(p).parent.name),
                      reverse=True)
    candidates += [Path(p) for p in versions]
    return next((c for c in candidates if (c / "initdb").exists() and (c / "postgres").exists()), None)


def _version_of(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _run_as_prefix() -> list[str]:
    """How to run the server's commands: as the service user when we are root (PostgreSQL refuses root);
    through `setpriv` where it exists, as it can also set a parent-death signal."""
    setpriv = shutil.which("setpriv") is not None
    if os.geteuid() != 0:
        return ["setpriv"] if setpriv else []
    _ensure_service_user()
    if setpriv:
        return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", SERVICE_USER, "--"]
    raise PostgresUnavailable(f"running as root, but neither setpriv nor runuser can switch to {SERVICE_USER!r}")


def _ensure_service_user() -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        print(f"creating system user {SERVICE_USER!r} to run the test PostgreSQL server", flush=True)
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", SERVICE_USER], check=True)


def _reachable_by(run_as: list[str], path: Path) -> bool:
    """Whether the server's user can create files in `path` (pytest's tmp dirs are private to root)."""
    return subprocess.run([*run_as, "test", "-w", str(path), "-a", "-x", str(path)], check=False).returncode == 0


def _chown_tree(root: Path, user: str) -> None:
    account = pwd.getpwnam(user)
    for path in (root, *root.rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)


def _initdb(bindir: Path, data: Path, run_as: list[str]) -> None:
    # ICU collation where available (PostgreSQL 15+): ordering then differs from byte order, as on most
    # production servers, so tests notice a query that forgets COLLATE "C".
    icu = ["--locale-provider=icu", "--icu-locale=en-US"] if _major_version(bindir) >= 15 else []
    command = [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", SERVICE_USER, "--auth=trust",
               "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", *icu]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 and icu:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        if os.geteuid() == 0:
            _chown_tree(data, SERVICE_USER)
        result = subprocess.run([c for c in command if c not in icu], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _major_version(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    return int(match.group(1)) if match else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
