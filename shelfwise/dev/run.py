"""`make run`: the whole platform on one machine for development and demos.

Starts (or reuses) the embedded PostgreSQL and Redis, applies migrations, provisions the demo
store if absent, then runs web (gunicorn), one Celery worker per queue and beat under honcho;
Ctrl-C stops them all (and the dev servers; their data is kept for the next run). Once the
web process answers /readyz it prints the URLs, the demo API key and the dashboard login.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shelfwise.dev import servers as devservers

ROOT = Path(__file__).resolve().parents[2]
DEMO_FILE = ROOT / ".dev" / "demo.json"


def _env() -> dict[str, str]:
    state = devservers.read_state(devservers.DEFAULT_STATE_DIR)
    if state is None:
        raise SystemExit("dev servers are not running")
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **devservers.server_env(state, devservers.DEFAULT_STATE_DIR),
        "SHELFWISE_ENV": os.environ.get("SHELFWISE_ENV", "development"),
        # honcho hands every process its own PORT, so the web port travels under another name.
        "SHELFWISE_PORT": os.environ.get("SHELFWISE_PORT", "8000"),
        "WEB_BIND": os.environ.get("WEB_BIND", "127.0.0.1"),
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "3"),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
        # Every process of the machine records its metrics here; /metrics adds them up.
        "PROMETHEUS_MULTIPROC_DIR": str(devservers.DEFAULT_STATE_DIR / "prometheus"),
    }


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True, cwd=ROOT)  # noqa: S603


def run() -> int:
    print("Starting embedded PostgreSQL and Redis…", flush=True)
    devservers.start(devservers.DEFAULT_STATE_DIR)
    env = _env()
    port = int(env["SHELFWISE_PORT"])
    if devservers.port_open(port):
        print(f"Port {port} is in use; run with SHELFWISE_PORT=<free port> make run", file=sys.stderr)
        return 1
    shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)  # an earlier run's processes
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True)
    print("Applying migrations…", flush=True)
    _manage(env, "migrate_schemas", "--executor=standard", "-v", "0")
    _manage(env, "demo_setup")
    print("Starting web, workers and beat (Ctrl-C stops everything)…", flush=True)
    honcho = subprocess.Popen(  # noqa: S603 - fixed command
        [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile.dev"), "-d", str(ROOT), "start"],
        env=env,
        cwd=ROOT,
    )
    try:
        return honcho.wait()
    except KeyboardInterrupt:
        honcho.send_signal(signal.SIGINT)
        return honcho.wait()
    finally:
        devservers.stop(devservers.DEFAULT_STATE_DIR)
        print("Stopped. Data is kept in .dev/ for the next `make run`.", flush=True)


def banner() -> int:
    """Wait for the web process, print where everything is, then idle (honcho needs us alive)."""
    port = int(os.environ.get("SHELFWISE_PORT", "8000"))
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        time.sleep(0.5)
    demo = json.loads(DEMO_FILE.read_text()) if DEMO_FILE.exists() else {}
    lines = [
        "",
        "=" * 72,
        " Shelfwise is running",
        f"   API base URL      {base}/api/v1/",
        f"   API docs          {base}/api/docs",
        f"   Demo API key      {demo.get('api_key', '(see manage.py apikey_create demo)')}",
        f"   Try it            curl -H 'Authorization: Bearer <key>' {base}/api/v1/whoami",
        f"   Dashboard         http://{demo.get('slug', 'demo')}.localhost:{port}/dashboard/",
        f"   Dashboard login   {demo.get('email', '-')} / {demo.get('password', '-')}",
        f"   Django admin      {base}/admin/",
        f"     superuser       {demo.get('admin_email', '-')} / {demo.get('admin_password', '-')}",
        f"     support staff   {demo.get('support_email', '-')} / {demo.get('support_password', '-')}",
        f"   Health            {base}/readyz",
        f"   Metrics           {base}/metrics  (loopback, or SHELFWISE_METRICS_TOKEN)",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def main() -> int:
    if sys.argv[1:] == ["banner"]:
        return banner()
    return run()


if __name__ == "__main__":
    sys.exit(main())
