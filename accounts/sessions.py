"""Sessions in the cache, backed by the database, that keep working while the cache is down.

Django's ``cached_db`` falls back to the database when reading a session fails, but then
writes the session back to the cache, and checks whether a new key is free, without catching
a cache error: with Redis down, every login and every logged-in page was a 500. Here the
database alone answers until the cache is back.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    @property
    def _cache_backend(self) -> BaseCache:
        return caches[settings.SESSION_CACHE_ALIAS]

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache_backend.get(self.cache_key)
        except Exception:
            data = None
        if data is not None:
            return dict(data)
        stored = DatabaseStore._get_session_from_db(self)  # type: ignore[attr-defined]  # missing from the stubs
        if stored is None:
            return {}
        data = self.decode(stored.session_data)
        try:
            self._cache_backend.set(self.cache_key, data, self.get_expiry_age(expiry=stored.expire_date))
        except Exception as exc:
            logger.warning("session cache unavailable, read from the database: %s", exc)
        return dict(data)

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        try:
            if (self.cache_key_prefix + session_key) in self._cache_backend:
                return True
        except Exception as exc:
            logger.warning("session cache unavailable, checked the database: %s", exc)
        return bool(DatabaseStore.exists(self, session_key))

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        DatabaseStore.delete(self, session_key)
        if key is None:
            return
        try:
            self._cache_backend.delete(self.cache_key_prefix + key)
        except Exception as exc:
            # The row is gone, so once the cache is back a cached copy is the only trace; a
            # cache restarted empty holds none. Said loudly, since a logout is at stake.
            logger.error("session cache unavailable: a deleted session may stay cached: %s", exc)
