"""Per-store settings, in sections owned by the apps that use them.

Each app registers a pydantic model for its section (``events`` from catalog, ``training`` from
recommendations); the stored JSON (``Tenant.settings``) is validated through it on every read,
so defaults apply to keys a store never set and a bad value can never be stored.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from django.db import transaction
from pydantic import BaseModel, ValidationError

from tenants.models import Tenant

SectionT = TypeVar("SectionT", bound=BaseModel)

_sections: dict[str, type[BaseModel]] = {}
# (tenant id, old section, new section) -> None; run after the change commits.
SettingsChangedListener = Callable[[int, BaseModel, BaseModel], None]
_listeners: dict[str, list[SettingsChangedListener]] = {}


class SettingsError(ValueError):
    """Settings that do not validate; ``errors`` holds pydantic's per-field errors."""

    def __init__(self, section: str, errors: ValidationError | str) -> None:
        self.section = section
        self.errors = errors
        super().__init__(f"invalid {section} settings")


def settings_section_register(name: str, model: type[BaseModel]) -> None:
    """Register the model of one settings section (call from AppConfig.ready)."""
    _sections[name] = model


def settings_changed_listen(section: str, listener: SettingsChangedListener) -> None:
    """Call ``listener`` after a tenant's ``section`` changed (e.g. to recompute features)."""
    listeners = _listeners.setdefault(section, [])
    if listener not in listeners:
        listeners.append(listener)


def settings_sections() -> dict[str, type[BaseModel]]:
    return dict(_sections)


def settings_section_get(tenant_settings: dict[str, Any], name: str, model: type[SectionT]) -> SectionT:
    """One section of a tenant's settings, validated, with defaults for anything unset."""
    return model.model_validate(tenant_settings.get(name) or {})


def tenant_settings_all(tenant: Tenant) -> dict[str, BaseModel]:
    return {name: model.model_validate(tenant.settings.get(name) or {}) for name, model in _sections.items()}


@transaction.atomic
def tenant_settings_update(*, tenant: Tenant, changes: dict[str, Any], actor: str) -> dict[str, BaseModel]:
    """Merge ``changes`` (section -> partial values) into the tenant's settings, validated."""
    from tenants.services import audit_record

    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    current = dict(locked.settings or {})
    changed: list[tuple[str, BaseModel, BaseModel]] = []
    for name, values in changes.items():
        model = _sections.get(name)
        if model is None:
            raise SettingsError(name, f"unknown settings section {name!r}")
        if not isinstance(values, dict):
            raise SettingsError(name, "a settings section must be an object")
        merged = {**(current.get(name) or {}), **values}
        try:
            validated = model.model_validate(merged)
        except ValidationError as exc:
            raise SettingsError(name, exc) from exc
        before = model.model_validate(current.get(name) or {})
        current[name] = validated.model_dump(mode="json", exclude_defaults=False)
        if before != validated:
            changed.append((name, before, validated))
    locked.settings = current
    locked.save(update_fields=["settings"])
    audit_record(
        action="settings.update",
        actor=actor,
        tenant=locked,
        target=f"tenant:{locked.slug}",
        metadata={"sections": sorted(changes)},
    )
    for name, before, after in changed:
        for listener in _listeners.get(name, []):
            transaction.on_commit(partial(listener, locked.pk, before, after))
    return tenant_settings_all(locked)
