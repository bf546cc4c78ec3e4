"""The sandbox's state: every object it has made, kept in memory and written to disk.

One lock serialises every change, which is plenty for a development double and keeps each
request's reads and writes consistent. The state lives in memory and in a SQLite database
(``state.sqlite3``, write-ahead log): each change writes only what it touched, in one
transaction, so a change costs the same with 300 objects as with 30,000, and a restarted
sandbox keeps its accounts, customers, subscriptions and events.

What a change touched is known because the engine reaches objects through the store:
``put``, ``get`` and ``extras`` mark what they return as changed (a caller may change it),
``delete`` forgets an object and ``touch`` marks one found by ``find`` (whose results are for
reading). The small settings (clock, switches, Connect grants) are written when their JSON
changes. With ``check=True`` (the tests) the store compares the whole database with memory
after every save and rollback, so a change made behind the store's back fails loudly.

A state directory of the earlier format (one ``state.json`` rewritten on every change) is
migrated on start; the old file is kept as ``state.json.migrated``.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

PLATFORM = "platform"  # owner key of objects on the platform's own account
PLATFORM_ACCOUNT_ID = "acct_1SandboxPlatform0"
EVENT_RETENTION_SECONDS = 30 * 24 * 60 * 60
STATE_VERSION = 2
logger = logging.getLogger("stripe_sandbox")
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
        "version": STATE_VERSION,
        "clock_offset": 0,  # seconds the test clock is ahead of the wall clock
        "objects": {},  # id -> object, as the API returns it
        "owners": {},  # id -> account id that owns it, or PLATFORM
        "accounts": {},  # connected (or connectable) sandbox accounts: id -> {"connected": bool, ...}
        "oauth_codes": {},  # code -> {"account", "used", "created"}
        "access_tokens": {},  # token -> account id
        "idempotency": {},  # "<owner>:<key>" -> {"fingerprint", "status", "body", "created"}
        "events": [],  # event ids, oldest first
        "pending_deliveries": {},  # event ids not yet delivered (survive a restart), oldest first
        "delivery": {"duplicate": False, "delay_ms": 0, "reorder": False, "drop": 0, "concurrency": 8},
        "after_failed_retries": "cancel",  # or "unpaid"
        "refuse_transfers": False,  # True: every transfer fails as if the balance were too low
        "invoice_sequence": 0,
        "extras": {},  # id -> what the sandbox keeps about an object beyond its API fields
    }


# Collections kept row by row; every other key of the state is one row of ``meta``.
_ROWS = ("objects", "owners", "extras", "idempotency", "events", "pending_deliveries")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS extras (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (seq INTEGER PRIMARY KEY, scope TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class StateError(Exception):
    """The state directory cannot be used (a newer format, or a file that is not a database)."""


class Store:
    """The state and its lock. Callers hold ``lock`` around a whole request."""

    def __init__(self, state_dir: Path, *, check: bool = False) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "state.sqlite3"
        self.lock = threading.RLock()
        self.check = check
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            # Every use is under ``lock``, so one connection serves every thread.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # A commit survives the sandbox being killed; only a crash of the machine may lose
            # the last few, which suits a development double.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            message = f"{self.path} is not a sandbox state database ({error}); move it away to start afresh."
            raise StateError(message) from error
        self._touched: dict[str, None] = {}  # object ids (and their extras) changed since the last save
        self._idempotency_touched: dict[str, None] = {}
        self._pending_touched: dict[str, None] = {}
        self._deleted = False  # an object was forgotten: a rollback reloads everything
        self._meta_written: dict[str, str] = {}  # key -> the JSON last written to ``meta``
        self._migrate_json_state()
        self.state = self._load()
        self._verify()

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # --- Reading and writing the database --------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _read(self) -> JSON:
        """The whole state as the database holds it."""
        state = empty_state()
        meta = {key: json.loads(value) for key, value in self._db.execute("SELECT key, value FROM meta")}
        version = meta.get("version", STATE_VERSION)
        if version > STATE_VERSION:
            raise StateError(f"{self.path} was written by a newer sandbox (state version {version}).")
        state.update(meta)
        for object_id, owner, body in self._db.execute("SELECT id, owner, body FROM objects ORDER BY seq"):
            obj = json.loads(body)
            state["objects"][object_id] = obj
            state["owners"][object_id] = owner
            if obj.get("object") == "event":
                state["events"].append(object_id)
        state["extras"] = {key: json.loads(body) for key, body in self._db.execute("SELECT id, body FROM extras")}
        rows = self._db.execute("SELECT scope, body FROM idempotency ORDER BY seq")
        state["idempotency"] = {scope: json.loads(body) for scope, body in rows}
        rows = self._db.execute("SELECT event_id FROM pending ORDER BY seq")
        state["pending_deliveries"] = {event_id: None for (event_id,) in rows}
        return state

    def _load(self) -> JSON:
        state = self._read()
        self._meta_written = {key: _dumps(value) for key, value in state.items() if key not in _ROWS}
        self._touched.clear()
        self._idempotency_touched.clear()
        self._pending_touched.clear()
        self._deleted = False
        return state

    def _write_all(self, db: sqlite3.Connection, state: JSON) -> None:
        for table in ("objects", "extras", "idempotency", "pending", "meta"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 (names from the list above)
        db.executemany(
            "INSERT INTO objects (id, owner, body) VALUES (?, ?, ?)",
            ((key, state["owners"][key], _dumps(obj)) for key, obj in state["objects"].items()),
        )
        db.executemany("INSERT INTO extras VALUES (?, ?)", ((k, _dumps(v)) for k, v in state["extras"].items()))
        db.executemany(
            "INSERT INTO idempotency (scope, body) VALUES (?, ?)",
            ((k, _dumps(v)) for k, v in state["idempotency"].items()),
        )
        db.executemany("INSERT INTO pending (event_id) VALUES (?)", ((k,) for k in state["pending_deliveries"]))
        db.executemany("INSERT INTO meta VALUES (?, ?)", ((k, _dumps(v)) for k, v in state.items() if k not in _ROWS))

    def _migrate_json_state(self) -> None:
        """Bring a ``state.json`` of the earlier format into the database, once."""
        legacy = self.state_dir / "state.json"
        if not legacy.exists():
            return
        if self._db.execute("SELECT count(*) FROM meta").fetchone()[0] == 0:
            loaded: JSON = json.loads(legacy.read_text(encoding="utf-8"))
            state = empty_state()
            state.update(loaded)
            state["version"] = STATE_VERSION
            state["delivery"] = {**empty_state()["delivery"], **state["delivery"]}
            state["pending_deliveries"] = dict.fromkeys(loaded.get("pending_deliveries") or [])
            with self._transaction() as db:
                self._write_all(db, state)
            logger.warning("Migrated %s into %s", legacy, self.path)
        legacy.replace(legacy.with_name("state.json.migrated"))

    def save(self) -> None:
        """Write what changed since the last save, in one transaction."""
        with self.lock, self._transaction() as db:
            state = self.state
            objects, owners, extras = state["objects"], state["owners"], state["extras"]
            for object_id in self._touched:
                obj = objects.get(object_id)
                if obj is None:
                    db.execute("DELETE FROM objects WHERE id = ?", (object_id,))
                else:
                    db.execute(
                        "INSERT INTO objects (id, owner, body) VALUES (?, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, body = excluded.body",
                        (object_id, owners[object_id], _dumps(obj)),
                    )
                extra = extras.get(object_id)
                if extra is None:
                    db.execute("DELETE FROM extras WHERE id = ?", (object_id,))
                else:
                    db.execute("INSERT OR REPLACE INTO extras VALUES (?, ?)", (object_id, _dumps(extra)))
            for scope in self._idempotency_touched:
                entry = state["idempotency"].get(scope)
                if entry is None:
                    db.execute("DELETE FROM idempotency WHERE scope = ?", (scope,))
                else:
                    db.execute(
                        "INSERT INTO idempotency (scope, body) VALUES (?, ?) "
                        "ON CONFLICT (scope) DO UPDATE SET body = excluded.body",
                        (scope, _dumps(entry)),
                    )
            for event_id in self._pending_touched:
                if event_id in state["pending_deliveries"]:
                    db.execute("INSERT OR IGNORE INTO pending (event_id) VALUES (?)", (event_id,))
                else:
                    db.execute("DELETE FROM pending WHERE event_id = ?", (event_id,))
            written = {}
            for key, value in state.items():
                if key not in _ROWS and self._meta_written.get(key) != (text := _dumps(value)):
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))
                    written[key] = text
        self._meta_written.update(written)
        self._touched.clear()
        self._idempotency_touched.clear()
        self._pending_touched.clear()
        self._deleted = False
        self._verify()

    def rollback(self) -> None:
        """Forget the changes since the last save: what they touched is read back from disk."""
        with self.lock:
            if self._deleted:
                self.state = self._load()
                self._verify()
                return
            state = self.state
            dropped = False
            for object_id in self._touched:
                row = self._db.execute("SELECT owner, body FROM objects WHERE id = ?", (object_id,)).fetchone()
                if row is None:
                    dropped |= state["objects"].pop(object_id, None) is not None
                    state["owners"].pop(object_id, None)
                else:
                    # Assigning keeps the object's place in creation order.
                    state["owners"][object_id], state["objects"][object_id] = row[0], json.loads(row[1])
                row = self._db.execute("SELECT body FROM extras WHERE id = ?", (object_id,)).fetchone()
                if row is None:
                    state["extras"].pop(object_id, None)
                else:
                    state["extras"][object_id] = json.loads(row[0])
            if dropped:
                state["events"] = [event_id for event_id in state["events"] if event_id in state["objects"]]
            for scope in self._idempotency_touched:
                row = self._db.execute("SELECT body FROM idempotency WHERE scope = ?", (scope,)).fetchone()
                if row is None:
                    state["idempotency"].pop(scope, None)
                else:
                    state["idempotency"][scope] = json.loads(row[0])
            if self._pending_touched:
                rows = self._db.execute("SELECT event_id FROM pending ORDER BY seq")
                state["pending_deliveries"] = {event_id: None for (event_id,) in rows}
            for key, text in self._meta_written.items():
                state[key] = json.loads(text)
            self._touched.clear()
            self._idempotency_touched.clear()
            self._pending_touched.clear()
            self._verify()

    def _verify(self) -> None:
        if not self.check:
            return
        on_disk, in_memory = self._read(), json.loads(_dumps(self.state))
        for key in in_memory:
            if on_disk[key] != in_memory[key]:
                detail = ""
                if isinstance(in_memory[key], dict):
                    ids = set(on_disk[key]) | set(in_memory[key])
                    detail = f": {sorted(k for k in ids if on_disk[key].get(k) != in_memory[key].get(k))[:5]}"
                raise AssertionError(f"the state on disk differs from memory in {key}{detail}")
        # Lists are newest first by creation order: the order is part of the state.
        for key in ("objects", "idempotency", "pending_deliveries"):
            if list(on_disk[key]) != list(in_memory[key]):
                raise AssertionError(f"the state on disk has {key} in another order than memory")

    def reset(self) -> None:
        with self.lock:
            self.state = empty_state()
            with self._transaction() as db:
                self._write_all(db, self.state)
            self.state = self._load()
            self._verify()

    # --- Time -----------------------------------------------------------------------------
    def now(self) -> int:
        return int(time.time()) + int(self.state["clock_offset"])

    # --- Objects --------------------------------------------------------------------------
    def put(self, obj: JSON, owner: str) -> JSON:
        self.state["objects"][obj["id"]] = obj
        self.state["owners"][obj["id"]] = owner
        self._touched[obj["id"]] = None
        return obj

    def get(self, object_id: str, owner: str | None = None) -> JSON | None:
        """The object, or None when it does not exist or belongs to another account. The caller
        may change it: it is written at the next save."""
        obj: JSON | None = self.state["objects"].get(object_id)
        if obj is None:
            return None
        if owner is not None and self.state["owners"].get(object_id) != owner:
            return None
        self._touched[object_id] = None
        return obj

    def touch(self, object_id: str) -> None:
        """Mark an object reached another way (``find``, ``state["objects"]``) as changed."""
        self._touched[object_id] = None

    def delete(self, object_id: str) -> None:
        self.state["objects"].pop(object_id, None)
        self.state["owners"].pop(object_id, None)
        self._touched[object_id] = None
        self._deleted = True

    def owner_of(self, object_id: str) -> str | None:
        owner: str | None = self.state["owners"].get(object_id)
        return owner

    def find(self, kind: str, owner: str | None = None) -> list[JSON]:
        """Objects of one kind (``object`` field), newest first, for reading: ``touch`` one
        before changing it."""
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
        """What the sandbox keeps about an object beyond its API fields; the caller may change it."""
        extras: JSON = self.state["extras"].setdefault(object_id, {})
        self._touched[object_id] = None
        return extras

    # --- Deliveries and idempotency ----------------------------------------------------------
    def pending_add(self, event_id: str) -> None:
        self.state["pending_deliveries"][event_id] = None
        self._pending_touched[event_id] = None

    def pending_remove(self, event_id: str) -> bool:
        """Forget an event that needs no more delivering; False when it was not pending."""
        if event_id not in self.state["pending_deliveries"]:
            return False
        del self.state["pending_deliveries"][event_id]
        self._pending_touched[event_id] = None
        return True

    def idempotency_put(self, scope: str, entry: JSON) -> None:
        self.state["idempotency"][scope] = entry
        self._idempotency_touched[scope] = None

    def idempotency_delete(self, scope: str) -> None:
        self.state["idempotency"].pop(scope, None)
        self._idempotency_touched[scope] = None
