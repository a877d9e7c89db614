"""Support admin pages over the tenant schemas: a store's model versions and training jobs, and
the latest training jobs of all active stores. Read-only.

The support admin composes apps, as the dashboard does, so it reads recommendations' tables;
tenants' models and services never import recommendations (dependencies point the other way).
Only model metadata is read here, never customers or events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import F
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django_tenants.utils import tenant_context
from psycopg import sql

from shelfwise.datastores.postgres import schemas_having_tables
from tenants.models import Tenant

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

# Bounds: these pages must stay cheap however many stores and jobs there are.
VERSIONS_SHOWN = 50
TENANT_JOBS_SHOWN = 30
ALL_JOBS_SHOWN = 100
ALL_JOBS_MAX_TENANTS = 200
ERROR_CHARS = 300


@dataclass(frozen=True)
class VersionRow:
    version: int
    name: str
    algorithm: str
    status: str
    trigger: str
    ndcg_at_10: float | None
    baseline_ndcg_at_10: float | None
    created_at: datetime
    finished_at: datetime | None
    promoted_at: datetime | None


@dataclass(frozen=True)
class JobRow:
    id: str
    status: str
    stage: str
    progress: int
    trigger: str
    requested_by: str
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: int | None
    tenant: Tenant | None = None


def _figure(metrics: Any, group: str) -> float | None:
    value = (metrics or {}).get(group, {}) if isinstance(metrics, dict) else {}
    figure = value.get("ndcg@10") if isinstance(value, dict) else None
    return float(figure) if isinstance(figure, int | float) else None


def _schemas_with_model_tables(schemas: list[str]) -> set[str]:
    from recommendations.models import ModelVersion, TrainingJob

    return schemas_having_tables(schemas, [ModelVersion._meta.db_table, TrainingJob._meta.db_table])


def tenant_models_read(tenant: Tenant) -> tuple[list[VersionRow], list[JobRow]]:
    """A store's newest model versions and training jobs, read in its schema."""
    from recommendations.models import ModelVersion, TrainingJob

    if not _schemas_with_model_tables([tenant.schema_name]):
        return [], []
    with tenant_context(tenant):
        versions = [
            VersionRow(
                version=v.version,
                name=v.name,
                algorithm=v.algorithm,
                status=v.status,
                trigger=v.trigger,
                ndcg_at_10=_figure(v.metrics, "model"),
                baseline_ndcg_at_10=_figure(v.metrics, "popularity"),
                created_at=v.created_at,
                finished_at=v.finished_at,
                promoted_at=v.promoted_at,
            )
            for v in ModelVersion.objects.only(
                "name",
                "version",
                "algorithm",
                "status",
                "trigger",
                "metrics",
                "created_at",
                "finished_at",
                "promoted_at",
            ).order_by("-created_at", "-version")[:VERSIONS_SHOWN]
        ]
        jobs = [
            JobRow(
                id=str(j.id),
                status=j.status,
                stage=j.stage,
                progress=j.progress,
                trigger=j.trigger,
                requested_by=j.requested_by,
                error=j.error[:ERROR_CHARS],
                created_at=j.created_at,
                started_at=j.started_at,
                finished_at=j.finished_at,
                version=j.version.version if j.version is not None else None,
            )
            for j in TrainingJob.objects.select_related("version").order_by("-created_at")[:TENANT_JOBS_SHOWN]
        ]
    return versions, jobs


def training_jobs_across_tenants(*, status: str | None = None) -> tuple[list[JobRow], int, int]:
    """The newest training jobs of the active stores (at most ALL_JOBS_MAX_TENANTS of them, the
    busiest by events this month first), in one query over their schemas.

    Returns the rows, how many stores were read and how many active stores there are."""
    from recommendations.models import ModelVersion, TrainingJob

    active = Tenant.objects.filter(status=Tenant.Status.ACTIVE).exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
    total = active.count()
    tenants = list(
        active.order_by(F("usage__events_this_month").desc(nulls_last=True), "slug").only(
            "id", "slug", "name", "schema_name"
        )[:ALL_JOBS_MAX_TENANTS]
    )
    ready = _schemas_with_model_tables([t.schema_name for t in tenants]) if tenants else set()
    tenants = [t for t in tenants if t.schema_name in ready]
    if not tenants:
        return [], 0, total
    by_id = {t.pk: t for t in tenants}
    where = sql.SQL("WHERE j.status = {}").format(sql.Literal(status)) if status else sql.SQL("")
    parts = [
        sql.SQL(
            "(SELECT {tenant_id}::bigint AS tenant_id, j.id, j.status, j.stage, j.progress, j.trigger, "
            "j.requested_by, left(j.error, {error_chars}) AS error, j.created_at, j.started_at, j.finished_at, "
            "v.version FROM {schema}.{jobs} j LEFT JOIN {schema}.{versions} v ON v.id = j.version_id {where} "
            "ORDER BY j.created_at DESC LIMIT {limit})"
        ).format(
            tenant_id=sql.Literal(t.pk),
            error_chars=sql.Literal(ERROR_CHARS),
            schema=sql.Identifier(t.schema_name),
            jobs=sql.Identifier(TrainingJob._meta.db_table),
            versions=sql.Identifier(ModelVersion._meta.db_table),
            where=where,
            limit=sql.Literal(ALL_JOBS_SHOWN),
        )
        for t in tenants
    ]
    query = sql.SQL("SELECT * FROM ({}) AS jobs ORDER BY created_at DESC LIMIT {}").format(
        sql.SQL(" UNION ALL ").join(parts), sql.Literal(ALL_JOBS_SHOWN)
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(connection.connection))
        rows = cursor.fetchall()
    jobs = [
        JobRow(
            id=str(job_id),
            status=job_status,
            stage=stage,
            progress=progress,
            trigger=trigger,
            requested_by=requested_by,
            error=error,
            created_at=created_at,
            started_at=started_at,
            finished_at=finished_at,
            version=version,
            tenant=by_id[tenant_id],
        )
        for (
            tenant_id,
            job_id,
            job_status,
            stage,
            progress,
            trigger,
            requested_by,
            error,
            created_at,
            started_at,
            finished_at,
            version,
        ) in rows
    ]
    return jobs, len(tenants), total


# --------------------------------------------------------------------------- views


def tenant_models_view(model_admin: ModelAdmin[Tenant], request: HttpRequest, object_id: str) -> TemplateResponse:
    """/admin/tenants/tenant/<id>/models/: the store's model versions and recent training jobs."""
    tenant = model_admin.get_object(request, object_id)
    if tenant is None:
        raise Http404("no such tenant")
    if not model_admin.has_view_permission(request, tenant):
        raise PermissionDenied
    versions, jobs = tenant_models_read(tenant)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Models and training jobs: {tenant.slug}",
        "subtitle": None,
        "opts": model_admin.opts,
        "original": tenant,
        "versions": versions,
        "jobs": jobs,
        "versions_shown": VERSIONS_SHOWN,
        "jobs_shown": TENANT_JOBS_SHOWN,
    }
    return TemplateResponse(request, "admin/tenants/tenant/models.html", context)


def training_jobs_view(model_admin: ModelAdmin[Tenant], request: HttpRequest) -> TemplateResponse:
    """/admin/tenants/tenant/training-jobs/: the newest training jobs of all active stores."""
    from recommendations.models import TrainingJob

    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    status = request.GET.get("status") or None
    if status not in TrainingJob.Status.values:
        status = None
    jobs, read, total = training_jobs_across_tenants(status=status)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Training jobs, all tenants",
        "subtitle": None,
        "opts": model_admin.opts,
        "jobs": jobs,
        "status": status,
        "statuses": TrainingJob.Status.choices,
        "tenants_read": read,
        "tenants_total": total,
        "jobs_shown": ALL_JOBS_SHOWN,
    }
    return TemplateResponse(request, "admin/tenants/tenant/training_jobs.html", context)
