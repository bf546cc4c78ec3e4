"""Free slugs: the one way hubs and memberships name their groups, hubs and offers' addresses."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.text import slugify


def unique_slug(
    queryset: QuerySet[Any], text: str, *, fallback: str, max_length: int, exclude_pk: int | None = None
) -> str:
    """``text`` slugified (at most ``max_length`` characters, ``fallback`` when nothing is left),
    with ``-2``, ``-3``, ... appended while ``queryset`` already holds it.

    A hint, not a guarantee: the caller saves under the unique index and retries on a clash.
    """
    base = slugify(text)[:max_length] or fallback
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    taken = set(queryset.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
