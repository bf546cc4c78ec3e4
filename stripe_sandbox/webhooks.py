"""Webhook delivery: signed as Stripe signs, retried with back-off, with fault switches.

Background threads deliver events from a schedule (a heap ordered by due time), so a retry
waiting for its back-off never holds up other events. As Stripe does, several deliveries are
in flight at once (``concurrency``, 8 unless the command line or the control API says
otherwise), so nothing about their order is promised. The switches (set through the control
API) make the delivery misbehave the way real networks and Stripe do:

- ``duplicate``: every event is delivered twice;
- ``delay_ms``: every delivery waits this long first;
- ``reorder``: events that are due together are delivered newest first, one after another;
- ``drop``: the next N events are never delivered, no copy of them and no retry (they stay
  listable through the API).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stripe_sandbox.store import JSON

# Seconds to wait before each retry of a failed delivery: one first attempt plus these. The
# control API can shorten them (``retry_delays``) so tests of giving up run fast.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
TIMEOUT_SECONDS = 10.0
LOG_SIZE = 2000
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``: ``t=<unix>,v1=<hex HMAC-SHA256>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    attempt: int = field(default=1, compare=False)
    copy: int = field(default=1, compare=False)  # 2 for the duplicate of an event
    generation: int = field(default=0, compare=False)


class Deliverer:
    """Delivers events to the webhook URL from up to ``concurrency`` background threads."""

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        load_event: Callable[[str], JSON | None],
        settings: Callable[[], JSON],
        consume_drop: Callable[[], bool],
        finished: Callable[[str], None],
    ) -> None:
        self.url = url
        self.secret = secret
        self._load_event = load_event
        self._settings = settings
        self._consume_drop = consume_drop
        self._finished = finished
        self._heap: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._log: list[JSON] = []
        self._in_flight = 0  # deliveries taken from the heap and not yet done
        self._busy = 0  # threads delivering a batch
        self._generation = 0
        self._stopping = False
        self._started = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        with self._cond:
            self._started = True
        self._grow(self._concurrency())

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + 5
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _concurrency(self) -> int:
        return max(1, int(self._settings().get("concurrency") or DEFAULT_CONCURRENCY))

    def _grow(self, count: int) -> None:
        """Start threads until there are ``count``; threads beyond the setting wait unused."""
        with self._cond:
            while self._started and not self._stopping and len(self._threads) < count:
                thread = threading.Thread(
                    target=self._run, name=f"webhook-deliverer-{len(self._threads) + 1}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    # --- Queueing -------------------------------------------------------------------------
    def enqueue(self, event_ids: list[str]) -> None:
        """Schedule events made by one request; they are due together."""
        settings = self._settings()
        copies = 2 if settings.get("duplicate") else 1
        kept = []
        for event_id in event_ids:
            # Decided here, once per event, so a dropped event has no copy and no retry.
            if self._consume_drop():
                self._drop(event_id, copies)
            else:
                kept.append(event_id)
        with self._cond:
            due = time.monotonic() + int(settings.get("delay_ms", 0)) / 1000
            for event_id in kept:
                for copy in range(1, copies + 1):
                    delivery = _Delivery(due, next(self._seq), event_id, copy=copy, generation=self._generation)
                    heapq.heappush(self._heap, delivery)
            self._cond.notify_all()
        self._grow(self._concurrency())

    def _drop(self, event_id: str, copies: int) -> None:
        """Log every copy of a dropped event as dropped, and stop tracking it."""
        event = self._load_event(event_id)
        if event is None:
            return
        for copy in range(1, copies + 1):
            delivery = _Delivery(time.monotonic(), next(self._seq), event_id, copy=copy, generation=self._generation)
            entry = self._entry(event, delivery)
            entry["result"] = "dropped"
            self._record(entry, delivery, final=True)

    def reset(self, url: str) -> None:
        with self._cond:
            self._generation += 1
            self._heap.clear()
            self._log.clear()
            self.url = url

    def log(self) -> JSON:
        with self._cond:
            return {"pending": len(self._heap) + self._in_flight, "deliveries": list(self._log), "url": self.url}

    # --- The threads ----------------------------------------------------------------------
    def _next_batch(self) -> list[_Delivery] | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                free = self._busy < self._concurrency()
                if free and self._heap and self._heap[0].due <= now:
                    batch = [heapq.heappop(self._heap)]
                    if self._settings().get("reorder"):
                        # Gather everything else that is due and deliver it newest first.
                        while self._heap and self._heap[0].due <= now:
                            batch.append(heapq.heappop(self._heap))
                        batch.reverse()
                    self._in_flight += len(batch)
                    self._busy += 1
                    return batch
                timeout = self._heap[0].due - now if free and self._heap else None
                self._cond.wait(timeout)
            return None

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                for delivery in batch:
                    try:
                        self._deliver(delivery)
                    finally:
                        with self._cond:
                            self._in_flight -= 1
                            self._cond.notify_all()
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _entry(self, event: JSON, delivery: _Delivery) -> JSON:
        return {
            "event_id": event["id"],
            "type": event["type"],
            "account": event.get("account"),
            "attempt": delivery.attempt,
            "copy": delivery.copy,
            "url": self.url,
            "status": None,
            "response": None,
            "error": None,
            "result": None,
            "at": time.time(),
        }

    def _deliver(self, delivery: _Delivery) -> None:
        event = self._load_event(delivery.event_id)
        if event is None or delivery.generation != self._generation:
            return
        entry = self._entry(event, delivery)
        if not self.url:
            entry["result"] = "no_endpoint"
            self._record(entry, delivery, final=True)
            return
        payload = json.dumps(event, indent=2).encode()
        request = urllib.request.Request(  # noqa: S310 (the URL is checked to be http(s) when set)
            self.url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(payload, self.secret),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                entry["status"] = response.status
                entry["response"] = response.read(2000).decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            entry["status"] = error.code
            entry["response"] = error.read(2000).decode("utf-8", "replace")
        except (OSError, ValueError) as error:
            entry["error"] = f"{type(error).__name__}: {error}"
        entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        ok = entry["status"] is not None and 200 <= entry["status"] < 300
        if ok:
            entry["result"] = "delivered"
            self._record(entry, delivery, final=True)
            return
        delays = self._settings().get("retry_delays") or RETRY_DELAYS
        if delivery.attempt <= len(delays):
            entry["result"] = "retrying"
            self._record(entry, delivery, final=False)
            with self._cond:
                if delivery.generation == self._generation:
                    retry = _Delivery(
                        time.monotonic() + float(delays[delivery.attempt - 1]),
                        next(self._seq),
                        delivery.event_id,
                        attempt=delivery.attempt + 1,
                        copy=delivery.copy,
                        generation=delivery.generation,
                    )
                    heapq.heappush(self._heap, retry)
                    self._cond.notify_all()
            return
        entry["result"] = "failed"
        self._record(entry, delivery, final=True)

    def _record(self, entry: JSON, delivery: _Delivery, *, final: bool) -> None:
        with self._cond:
            if delivery.generation != self._generation:
                return
            self._log.append(entry)
            del self._log[:-LOG_SIZE]
        if final and delivery.copy == 1:
            self._finished(delivery.event_id)


def describe(entry: JSON) -> str:
    """One line for a delivery log entry (the sandbox's index page)."""
    status: Any = entry.get("status") or entry.get("error") or ""
    return f"{entry['type']} {entry['event_id']} attempt {entry['attempt']}: {entry['result']} {status}"
