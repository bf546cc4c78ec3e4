"""The dashboard's cached figures (docs/METRICS.md, *Freshness and cost*).

A figure is computed at most once per ``FIGURES_CACHE_SECONDS`` and kept in the shared cache,
under a *generation* that every write changing what the figures count moves on once its
transaction commits (``figures_forget``). A look after such a write computes afresh; a
computation that began before the write stores its result under the old generation, which
nobody reads any more. What no write announces (an access period running out as time passes)
is at most ``FIGURES_CACHE_SECONDS`` old.

The cache is an optimisation only: when it cannot be reached, figures are computed on each
look and a warning is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache, caches
from django.db import transaction

logger = logging.getLogger(__name__)

T = TypeVar("T")
GENERATION = "figures:generation"
# This process's own memory (settings.CACHES["local"]).
local = caches["local"]


def _generation() -> int:
    generation = cache.get(GENERATION)
    if generation is None:
        cache.add(GENERATION, 0, timeout=None)
        generation = cache.get(GENERATION, 0)
    return int(generation)


def _move_on() -> None:
    try:
        try:
            cache.incr(GENERATION)
        except ValueError:  # not there (evicted, or never read): any new value will do
            cache.set(GENERATION, 1, timeout=None)
    except Exception:
        seconds = settings.FIGURES_CACHE_SECONDS
        logger.warning("the cached figures could not be forgotten: they may be up to %s s old", seconds)


def figures_forget() -> None:
    """Forget every cached figure once the current transaction commits (at once outside one).
    Called by the services whose writes change what the figures count."""
    transaction.on_commit(_move_on)


def figures_cached(name: str, compute: Callable[[], T]) -> T:
    """``compute()``, or what it returned for ``name`` less than ``FIGURES_CACHE_SECONDS`` ago
    with no write since. ``name`` must say everything the result depends on (a period, a
    filter, the day).

    The generation is read from the shared cache on each call, one round trip; the value is
    kept in this process's memory too, so a rendered fragment crosses the network once per
    process and generation."""
    try:
        key = f"figures:{_generation()}:{name}"
        found = local.get(key)
        if found is None:
            found = cache.get(key)
            if found is not None:
                local.set(key, found, timeout=settings.FIGURES_CACHE_SECONDS)
    except Exception:
        logger.warning("the figures cache cannot be read: computing %s", name)
        return compute()
    if found is not None:
        return found  # type: ignore[no-any-return]
    value = compute()
    try:
        cache.set(key, value, timeout=settings.FIGURES_CACHE_SECONDS)
        local.set(key, value, timeout=settings.FIGURES_CACHE_SECONDS)
    except Exception:
        logger.warning("the figures cache cannot be written: %s is computed again next time", name)
    return value
