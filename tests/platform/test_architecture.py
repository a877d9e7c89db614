"""The layer contract (pyproject's [tool.importlinter]) holds, and can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from recommendations.services.training import TRAIN_TASK
from shelfwise.celery import app as celery_app
from tests.helpers import ROOT

PACKAGES = ("shelfwise", "tenants", "catalog", "recommendations", "support", "dashboard")
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_apps_depend_one_way_and_without_cycles() -> None:
    result = _lint(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_contract_fails_on_an_import_against_the_layers_and_on_a_cycle(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.html"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # The platform reaching up into an app, and the catalog's features importing its tasks
    # (which import the features): both must break a contract.
    (tmp_path / "shelfwise" / "probe.py").write_text("from tenants.models import Tenant  # noqa\n")
    features = tmp_path / "catalog" / "online_features.py"
    features.write_text(features.read_text() + "\nimport catalog.tasks  # noqa\n")

    result = _lint(tmp_path)

    assert result.returncode == 1, result.stdout
    assert "0 kept, 2 broken" in result.stdout
    assert "shelfwise is not allowed to import tenants" in result.stdout
    assert "shelfwise.probe -> tenants.models" in result.stdout
    assert "No cycles are allowed in catalog" in result.stdout


def test_the_training_task_sent_by_name_exists_on_its_queue() -> None:
    import recommendations.tasks  # noqa: F401 - registers the tasks, as a worker's autodiscovery does

    task = celery_app.tasks[TRAIN_TASK]

    assert task.queue == "training"
