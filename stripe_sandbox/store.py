"""The sandbox's state: every object it has made, kept in memory and written to disk.

One lock serialises every change, which is plenty for a development double and keeps each
request's reads and writes consistent. After each change the whole state is written to
``state.json`` atomically (a temporary file, fsync, then ``os.replace``), so a restarted demo
keeps its accounts, customers, subscriptions and events.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

PLATFORM = "platform"  # owner key of objects on the platform's own account
PLATFORM_ACCOUNT_ID = "acct_1SandboxPlatform0"
EVENT_RETENTION_SECONDS = 30 * 24 * 60 * 60
_ALPHABET = string.ascii_letters + string.digits


class StripeError(Exception):
    """An API error with Stripe's shape: ``{"error": {"type", "message", "code", "param"}}``."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: JSON | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}
        # A declined payment is an error that still happened: its failed charge stays, as on Stripe.
        self.keep_changes = keep_changes

    def body(self) -> JSON:
        error: JSON = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def not_found(noun: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(f"No such {noun}: '{object_id}'", status=404, code="resource_missing", param=param)


def new_id(prefix: str, length: int = 24) -> str:
    """``cus`` gives ``cus_Xy...``; a prefix with its own underscore is kept as is (``sub_1`` gives ``sub_1Xy...``)."""
    separator = "" if "_" in prefix else "_"
    return prefix + separator + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def empty_state() -> JSON:
    return {
        "version": 1,
        "clock_offset": 0,  # seconds the test clock is ahead of the wall clock
        "objects": {},  # id -> object, as the API returns it
        "owners": {},  # id -> account id that owns it, or PLATFORM
        "accounts": {},  # connected (or connectable) sandbox accounts: id -> {"connected": bool, ...}
        "oauth_codes": {},  # code -> {"account", "used", "created"}
        "access_tokens": {},  # token -> account id
        "idempotency": {},  # "<owner>:<key>" -> {"fingerprint", "status", "body", "created"}
        "events": [],  # event ids, oldest first
        "pending_deliveries": [],  # event ids not yet delivered (survive a restart)
        "delivery": {"duplicate": False, "delay_ms": 0, "reorder": False, "drop": 0},
        "after_failed_retries": "cancel",  # or "unpaid"
        "invoice_sequence": 0,
        "extras": {},  # id -> what the sandbox keeps about an object beyond its API fields
    }


class Store:
    """The state and its lock. Callers hold ``lock`` around a whole request."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "state.json"
        self.lock = threading.RLock()
        self.state = self._load()

    def _load(self) -> JSON:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            loaded: JSON = json.loads(self.path.read_text(encoding="utf-8"))
            state = empty_state()
            state.update(loaded)
            return state
        return empty_state()

    def save(self) -> None:
        with self.lock:
            data = json.dumps(self.state, separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=self.state_dir)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def reset(self) -> None:
        with self.lock:
            self.state = empty_state()
            self.save()

    # --- Time -----------------------------------------------------------------------------
    def now(self) -> int:
        return int(time.time()) + int(self.state["clock_offset"])

    # --- Objects --------------------------------------------------------------------------
    def put(self, obj: JSON, owner: str) -> JSON:
        self.state["objects"][obj["id"]] = obj
        self.state["owners"][obj["id"]] = owner
        return obj

    def get(self, object_id: str, owner: str | None = None) -> JSON | None:
        """The object, or None when it does not exist or belongs to another account."""
        obj: JSON | None = self.state["objects"].get(object_id)
        if obj is None:
            return None
        if owner is not None and self.state["owners"].get(object_id) != owner:
            return None
        return obj

    def owner_of(self, object_id: str) -> str | None:
        owner: str | None = self.state["owners"].get(object_id)
        return owner

    def find(self, kind: str, owner: str | None = None) -> list[JSON]:
        """Objects of one kind (``object`` field), newest first."""
        owners = self.state["owners"]
        found = [
            obj
            for object_id, obj in self.state["objects"].items()
            if obj.get("object") == kind and (owner is None or owners.get(object_id) == owner)
        ]
        # Insertion order is creation order; newest first as Stripe lists.
        found.reverse()
        return found

    def extras(self, object_id: str) -> JSON:
        extras: JSON = self.state["extras"].setdefault(object_id, {})
        return extras
