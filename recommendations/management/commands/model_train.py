from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from recommendations.management.commands._base import tenant_by_slug
from recommendations.models import ModelVersion, TrainingJob
from recommendations.services.training import (
    TrainingAlreadyRunning,
    TrainingQueueUnavailable,
    TrainingRefused,
    training_job_execute,
    training_job_request,
)
from recommendations.training.algorithms import ALGORITHMS
from tenants.management.commands._base import cli_actor


class Command(BaseCommand):
    help = "Train a store's model: queue a job for the training workers, or run it here with --now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--algorithm", choices=[*ALGORITHMS, "auto"])
        parser.add_argument("--tune", action="store_true", help="search hyper-parameters on the validation split")
        parser.add_argument("--now", action="store_true", help="train in this process instead of a worker")
        parser.add_argument("--wait", action="store_true", help="wait for the queued job to finish")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["tenant"])
        with tenant_context(tenant):
            try:
                job = training_job_request(
                    trigger=ModelVersion.Trigger.CLI,
                    requested_by=cli_actor(),
                    algorithm=options.get("algorithm"),
                    tune=True if options["tune"] else None,
                )
            except TrainingAlreadyRunning as exc:
                raise CommandError(str(exc)) from exc
            except (TrainingRefused, TrainingQueueUnavailable) as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"job {job.id} queued")
            if options["now"]:
                training_job_execute(str(job.id))
            elif options["wait"]:
                while not job.is_finished:
                    time.sleep(1)
                    job.refresh_from_db()
                    self.stdout.write(f"  {job.progress:>3}%  {job.stage}")
            job = TrainingJob.objects.select_related("version").get(pk=job.pk)
            self._report(job)

    def _report(self, job: TrainingJob) -> None:
        if job.status == TrainingJob.Status.FAILED:
            raise CommandError(job.error)
        version = job.version
        if version is None or not job.is_finished:
            return
        model, baseline = version.metrics.get("model", {}), version.metrics.get("popularity", {})
        self.stdout.write(self.style.SUCCESS(f"version {version.version} ({version.algorithm}): {version.status}"))
        self.stdout.write(f"  NDCG@10 {model.get('ndcg@10', 0):.4f}  (popularity {baseline.get('ndcg@10', 0):.4f})")
        self.stdout.write(f"  gate: {version.gate.get('reason', '')}")
