"""Seed the default plans. Support staff adjust quotas in Django admin."""

from django.db import migrations

PLANS = [
    # code, name, max_items, max_customers, max_events_per_month, requests_per_minute, burst, trainings/day
    ("free", "Free", 10_000, 50_000, 1_000_000, 1_200, 200, 4),
    ("pro", "Pro", 500_000, 5_000_000, 100_000_000, 12_000, 2_000, 24),
    ("enterprise", "Enterprise", None, None, None, 60_000, 10_000, 96),
]


def seed(apps, schema_editor):
    plan_model = apps.get_model("tenants", "Plan")
    for code, name, items, customers, events, rpm, burst, trainings in PLANS:
        plan_model.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "max_items": items,
                "max_customers": customers,
                "max_events_per_month": events,
                "requests_per_minute": rpm,
                "burst": burst,
                "trainings_per_day": trainings,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
