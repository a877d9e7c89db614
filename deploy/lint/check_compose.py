"""Offline checks of docker/compose.yaml: the Compose Specification schema, then the project's rules.

The schema is the compose-spec project's `schema/compose-spec.json` (Apache-2.0) as vendored in
check-jsonschema (pinned in deploy/lint/requirements.txt); `docker-compose config` in run.sh adds
Compose's own loader on top. Run through deploy/lint/run.sh, which installs the pinned tools.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
# Shared env every Django process needs (names as settings.py reads them).
REQUIRED_ENV = {
    "SHELFWISE_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "SHELFWISE_METRICS_TOKEN",
    "PROMETHEUS_MULTIPROC_DIR",
    "SHELFWISE_MEDIA_ROOT",
}
ONE_OFF = {"migrate", "init-volumes"}  # run to completion; everything else stays up
NOT_DJANGO = {"init-volumes"}  # uses the image only to chown the media volume
TMP = "/tmp"  # noqa: S108 - the containers' tmpfs mount point, not a temporary file of ours


def code_env_names() -> set[str]:
    """Every string literal in the project's Python packages that looks like an env var name,
    and every variable the settings' environment model declares (shelfwise/environment.py)."""
    names: set[str] = set()
    for package in ("shelfwise", "tenants", "catalog", "recommendations", "support", "dashboard"):
        for path in (ROOT / package).rglob("*.py"):
            names.update(re.findall(r"[\"']([A-Z][A-Z0-9_]{2,})[\"']", path.read_text()))
    environment = (ROOT / "shelfwise" / "environment.py").read_text()
    names.update(re.findall(r"^    ([A-Z][A-Z0-9_]{2,}): ", environment, flags=re.MULTILINE))
    return names


def procfile_workers() -> dict[str, str]:
    """Procfile.dev's worker roles and the queue each consumes: {"worker-default": "default", …}."""
    workers = {}
    for line in (ROOT / "Procfile.dev").read_text().splitlines():
        role, _, command = line.partition(":")
        if role.startswith("worker-"):
            args = shlex.split(command)
            workers[role] = args[args.index("-Q") + 1]
    return workers


def schema_errors(compose: dict) -> list[str]:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"schema: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(compose)
    ]


def service_errors(compose: dict, compose_dir: Path) -> list[str]:
    """Per service: healthchecks, one-off jobs, and for the image's services the shared setup."""
    errors = []
    shared_env = set(compose["x-shelfwise-env"])
    known = code_env_names()
    for name, service in compose["services"].items():
        health = service.get("healthcheck", {})
        if name in ONE_OFF:
            if service.get("restart") != "no":
                errors.append(f'{name}: a one-off job must have restart: "no"')
        elif health.get("disable") or not health.get("test"):
            errors.append(f"{name}: long-running service without a healthcheck")
        if service.get("image") != compose["x-shelfwise-app"]["image"]:
            continue
        build = service.get("build", {})
        if not (compose_dir / build.get("context", "-") / build.get("dockerfile", "-")).is_file():
            errors.append(f"{name}: build context/dockerfile does not point at docker/Dockerfile")
        if not service.get("read_only") or TMP not in service.get("tmpfs", []):
            errors.append(f"{name}: the image runs read-only with a tmpfs /tmp (PROMETHEUS_MULTIPROC_DIR)")
        if name in NOT_DJANGO:
            continue
        env = set(service.get("environment", {}))
        errors += [f"{name}: shared env {var} missing" for var in sorted(shared_env - env)]
        errors += [f"{name}: env {var} is not read anywhere in the code" for var in sorted(env - known)]
        after = service.get("depends_on", {}).get("migrate", {})
        if name not in ONE_OFF and after.get("condition") != "service_completed_successfully":
            errors.append(f"{name}: must wait for migrate (condition: service_completed_successfully)")
    return errors


def role_errors(compose: dict) -> list[str]:
    """The roles match the project: migrate_schemas, web on 8000 with /healthz, Procfile.dev's queues, media."""
    errors = []
    services, workers = compose["services"], procfile_workers()
    errors += [
        f"service {name} missing"
        for name in sorted({"postgres", "redis", "web", "beat", *ONE_OFF, *workers} - set(services))
    ]
    if "migrate_schemas" not in services.get("migrate", {}).get("command", []):
        errors.append("migrate: must run `manage.py migrate_schemas` (as shelfwise/dev/run.py does)")
    web = services.get("web", {})
    if "/healthz" not in json.dumps(web.get("healthcheck")) or not any(
        str(port).endswith(":8000") for port in web.get("ports", [])
    ):
        errors.append("web: needs a /healthz healthcheck and port 8000 published")
    for role, queue in workers.items():
        args = services.get(role, {}).get("command", [])
        if "-Q" not in args or args[args.index("-Q") + 1] != queue:
            errors.append(f"{role}: must consume queue {queue!r} (Procfile.dev)")
    media_root = compose["x-shelfwise-env"]["SHELFWISE_MEDIA_ROOT"]
    for name in ("web", *workers):
        if not any(str(m).endswith(f":{media_root}") for m in services.get(name, {}).get("volumes", [])):
            errors.append(f"{name}: model artifacts volume not mounted at SHELFWISE_MEDIA_ROOT ({media_root})")
    return errors


def report(errors: list[str], summary: str) -> int:
    sys.stdout.write("".join(f"ERROR {error}\n" for error in errors))
    sys.stdout.write(f"{summary}, {'FAILED' if errors else 'ok'}\n")
    return 1 if errors else 0


def main(compose_file: Path = COMPOSE) -> int:
    compose = yaml.safe_load(compose_file.read_text())  # PyYAML resolves the x- anchors and `<<` merges
    shared_env = set(compose["x-shelfwise-env"])
    errors = schema_errors(compose)
    errors += [f"x-shelfwise-env: {name} is not read anywhere in the code" for name in shared_env - code_env_names()]
    errors += [f"x-shelfwise-env: {name} missing" for name in REQUIRED_ENV - shared_env]
    errors += service_errors(compose, compose_file.parent) + role_errors(compose)
    where = compose_file.relative_to(ROOT)
    return report([f"{where}: {error}" for error in errors], f"compose: {len(compose['services'])} services")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else COMPOSE))
