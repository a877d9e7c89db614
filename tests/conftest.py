"""The test session: real PostgreSQL and Redis (throw-away servers from `make test`), real tenants,
real Celery workers, gunicorn and Chromium where behaviour depends on them.

Fixtures live in tests/fixtures/, by what they start: the database and stores (database.py),
worker and web processes (processes.py), the browser (browser.py). Shared helpers are in
tests/helpers.py, test objects in tests/factories.py.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.processes", "tests.fixtures.browser"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("SHELFWISE_EPHEMERAL") != "1" and os.environ.get("SHELFWISE_TEST_ALLOW_SHARED") != "1":
        pytest.exit(
            "Tests flush Redis and start workers on the broker: run them with `make test` "
            "(throw-away servers), or set SHELFWISE_TEST_ALLOW_SHARED=1 if you mean it.",
            returncode=2,
        )
