"""The API contract: the committed OpenAPI document matches the code, and the live app
(gunicorn, real PostgreSQL/Redis) honours it under schemathesis' generated requests."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.factories import make_tenant
from tests.fixtures.processes import AppServer
from tests.helpers import ROOT

COMMITTED = ROOT / "docs" / "openapi.yaml"
# Bounded for `make test`; `make fuzz` runs the same with far more examples.
MAX_EXAMPLES = int(os.environ.get("SHELFWISE_FUZZ_EXAMPLES", "25"))


def generated_schema() -> str:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return out.getvalue()


def test_committed_openapi_matches_the_code() -> None:
    assert COMMITTED.read_text() == generated_schema(), (
        "docs/openapi.yaml is out of date: run `make openapi` and review the diff "
        "(a breaking change to /api/v1 needs a new API version)"
    )


def test_every_operation_documents_problem_errors() -> None:
    import yaml

    schema = yaml.safe_load(COMMITTED.read_text())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("400", "401", "403", "404", "429", "500"):
                content = operation["responses"][code]["content"]
                assert "application/problem+json" in content, f"{method.upper()} {path} {code}"


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors_or_schema_violations(live_db: None, app_server: AppServer, tmp_path: Path):
    handle = make_tenant("fuzz")
    report = tmp_path / "schemathesis.txt"

    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(ROOT / "tests" / "schemathesis.toml"),
            "run",
            f"{app_server.url}/api/v1/schema",
            "--header",
            f"Authorization: Bearer {handle.key}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            os.environ.get("SHELFWISE_FUZZ_SEED", "20261124"),
            # Every check runs; tests/schemathesis.toml relaxes the two that contradict the
            # documented contract (and says why).
            "--workers",
            "1",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )

    report.write_text(result.stdout + result.stderr)
    (ROOT / ".dev" / "test-artifacts").mkdir(parents=True, exist_ok=True)
    (ROOT / ".dev" / "test-artifacts" / "schemathesis.txt").write_text(result.stdout + result.stderr)
    failures = "\n".join(line[:400] for line in result.stdout[result.stdout.find("FAILURES") :].splitlines())
    assert result.returncode == 0, failures[:20000]
    assert "generated" in result.stdout[result.stdout.rfind("SUMMARY") :]
