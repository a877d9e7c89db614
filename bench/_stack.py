"""Start a throw-away stack the way `make run` does (embedded PostgreSQL + Redis, migrations,
gunicorn with the same config), for benchmarks. Nothing here is used by the app itself."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shelfwise.dev import servers as devservers

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    base_url: str
    env: dict[str, str]
    state_dir: Path
    processes: list[subprocess.Popen[bytes]]

    def manage(self, *args: str, capture: bool = False) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=capture,
            text=True,
        )
        return result.stdout if capture else ""

    def create_tenant(self, slug: str, plan: str = "enterprise") -> str:
        """Create a tenant and return its API key."""
        out = self.manage("tenant_create", slug, "--name", f"Bench {slug}", "--plan", plan, capture=True)
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if "API key:" in line)


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            if response.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s")


@contextlib.contextmanager
def stack(
    *, web_workers: int = 3, web_threads: int = 1, celery_queues: str | None = None, settings: str | None = None
) -> Iterator[Stack]:
    """Ephemeral servers + migrated database + gunicorn (+ optionally Celery workers)."""
    (ROOT / ".dev" / "tmp").mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=ROOT / ".dev" / "tmp"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        state = devservers.start(state_dir, durable=False)
        port = devservers.free_port()
        env = {
            **os.environ,
            **devservers.server_env(state, state_dir),
            "SHELFWISE_ENV": "development",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": str(web_workers),
            "WEB_THREADS": str(web_threads),
            "PYTHONUNBUFFERED": "1",
            "SHELFWISE_MEDIA_ROOT": str(state_dir / "media"),
            # Metrics as make run and the image record them (every process writes its files).
            "PROMETHEUS_MULTIPROC_DIR": str(state_dir / "prometheus"),
            **({"DJANGO_SETTINGS_MODULE": settings} if settings else {}),
        }
        (state_dir / "prometheus").mkdir()
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate_schemas", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        log = (state_dir / "gunicorn.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn", "-c", str(ROOT / "shelfwise" / "server" / "gunicorn_conf.py"),
                    "-b", f"127.0.0.1:{port}", "shelfwise.wsgi:application",
                ],
                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        if celery_queues:
            worker_log = (state_dir / "worker.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "shelfwise", "worker", "-Q", celery_queues, "-c", "1",
                     "--without-gossip", "--without-mingle", "-l", "WARNING"],
                    env=env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        _wait_http(f"{base_url}/readyz", 60)
        yield Stack(base_url, env, state_dir, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
        devservers.destroy(state_dir)


def django_without_servers() -> None:
    """Django set up for a benchmark that runs in this process only: settings need database and
    Redis addresses, which are never used (they point nowhere)."""
    os.environ.setdefault("DATABASE_URL", "postgres://bench@bench.invalid/bench")
    os.environ.setdefault("REDIS_URL", "redis://bench.invalid:1/0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shelfwise.settings")
    import django

    django.setup()


def print_json(payload: object) -> None:
    print(json.dumps(payload, indent=None, sort_keys=True))
