"""Settings for benchmark servers: the product's settings plus the ceiling view's route."""

from shelfwise.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
