"""Shelfwise: the project package (settings, URLs, Celery app, cross-cutting platform code)."""

import os

# implicit and numpy must not start a BLAS thread pool per process (PITFALLS: it warns and
# thrashes); parallelism comes from processes. Set before numpy is first imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from shelfwise.celery import app as celery_app  # noqa: E402 - after the thread settings above

__all__ = ["celery_app"]
