"""The environment: every variable is typed and validated in one place, and the README's
configuration table and the code name the same variables."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from shelfwise.environment import Environment, read_environment
from tests.helpers import ROOT

PACKAGES = ("shelfwise", "tenants", "catalog", "recommendations", "support", "dashboard")


def _configuration_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("## Configuration") : readme.index("## Benchmarks")]


def _read_by_the_code() -> set[str]:
    names = set(Environment.model_fields)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(re.findall(r"[\"']([A-Z][A-Z0-9_]{2,})[\"']", path.read_text()))
    return names


def test_every_variable_the_settings_read_is_documented() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", _configuration_section()))

    assert set(Environment.model_fields) - documented == set()


def test_every_documented_variable_is_read_by_the_code() -> None:
    table = [line for line in _configuration_section().splitlines() if line.startswith("| `")]
    first_column = {name for line in table for name in re.findall(r"`([A-Z][A-Z0-9_]{2,})`", line.split(" | ")[0])}

    assert len(first_column) > 60
    assert first_column - _read_by_the_code() == set()


def test_blank_means_unset_and_lists_split_on_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_PORT", "")
    monkeypatch.setenv("DEBUG", "")
    monkeypatch.setenv("CSRF_TRUSTED_ORIGINS", " https://a.example, ,https://b.example ")
    monkeypatch.setenv("ALLOWED_HOSTS", "")
    monkeypatch.setenv("SHELFWISE_FAST_PATH", "off")

    environment = read_environment()

    assert environment.EMAIL_PORT == 25  # the default
    assert environment.DEBUG is None  # unset: the settings derive it from SHELFWISE_ENV
    assert environment.CSRF_TRUSTED_ORIGINS == ["https://a.example", "https://b.example"]
    assert environment.ALLOWED_HOSTS == []  # set, and empty
    assert environment.SHELFWISE_FAST_PATH is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be a boolean (true/false), not 'maybe'"),
        ("EMAIL_PORT", "twenty-five", "EMAIL_PORT must be an integer, not 'twenty-five'"),
        ("REDIS_SOCKET_TIMEOUT", "fast", "REDIS_SOCKET_TIMEOUT must be a number, not 'fast'"),
        ("SHELFWISE_ENV", "prod", "SHELFWISE_ENV must be development, test or production, not 'prod'"),
    ],
)
def test_a_value_that_does_not_parse_stops_the_process_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured) as refused:
        read_environment()

    assert str(refused.value) == message
