"""Settings for benchmark servers: the product's settings plus the ceiling view's route."""

from shelfwise.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

import os  # noqa: E402

# bench/serving.py's two-stage case: a two-stage version is served even where its ranker does not
# beat the single stage (it measures serving cost; quality is bench/quality.py's business).
# Never set by the product's settings.
SHELFWISE_TWO_STAGE_ALWAYS = os.environ.get("SHELFWISE_BENCH_TWO_STAGE_ALWAYS") == "1"
