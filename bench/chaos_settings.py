"""Settings of ``make chaos``'s processes: the benchmarks' production-like settings, with the
warnings kept (a task that could not be queued, a retry) and gunicorn's access log left on,
since the run counts its 5xx answers there."""

from __future__ import annotations

from bench.settings import *  # noqa: F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"level": "WARNING", "handlers": ["console"]},
}
