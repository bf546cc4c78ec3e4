"""Uploads for the offer editor, and checkout pages that do not outlive a test."""

from __future__ import annotations

import pytest
from django.core.cache import cache, caches
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import image_bytes


def upload(
    name: str = "thumb.png", content: bytes | None = None, content_type: str = "image/png"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes() if content is None else content, content_type=content_type)


@pytest.fixture(autouse=True)
def _fresh_page_cache() -> None:
    """Cached checkout pages must not leak from one test's database into another's."""
    caches["local"].clear()
    cache.clear()
