"""Webhook delivery: signed as Stripe signs, retried with back-off, with fault switches.

One background thread delivers events from a schedule (a heap ordered by due time), so a
retry waiting for its back-off never holds up other events. The switches (set through the
control API) make the delivery misbehave the way real networks and Stripe do:

- ``duplicate``: every event is delivered twice;
- ``delay_ms``: every delivery waits this long first;
- ``reorder``: events that are due together are delivered newest first;
- ``drop``: the next N events are never delivered (they stay listable through the API).
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
    """Delivers events to the webhook URL in a background thread."""

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
        self._in_flight = 0
        self._generation = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="webhook-deliverer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # --- Queueing -------------------------------------------------------------------------
    def enqueue(self, event_ids: list[str]) -> None:
        """Schedule events made by one request; they are due together."""
        settings = self._settings()
        with self._cond:
            now = time.monotonic()
            delay = int(settings.get("delay_ms", 0)) / 1000
            for event_id in event_ids:
                heapq.heappush(
                    self._heap, _Delivery(now + delay, next(self._seq), event_id, generation=self._generation)
                )
                if settings.get("duplicate"):
                    heapq.heappush(
                        self._heap,
                        _Delivery(now + delay, next(self._seq), event_id, copy=2, generation=self._generation),
                    )
            self._cond.notify_all()

    def reset(self, url: str) -> None:
        with self._cond:
            self._generation += 1
            self._heap.clear()
            self._log.clear()
            self.url = url

    def log(self) -> JSON:
        with self._cond:
            return {"pending": len(self._heap) + self._in_flight, "deliveries": list(self._log), "url": self.url}

    # --- The thread -----------------------------------------------------------------------
    def _next_batch(self) -> list[_Delivery] | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    batch = [heapq.heappop(self._heap)]
                    if self._settings().get("reorder"):
                        # Gather everything else that is due and deliver it newest first.
                        while self._heap and self._heap[0].due <= now:
                            batch.append(heapq.heappop(self._heap))
                        batch.reverse()
                    self._in_flight += len(batch)
                    return batch
                timeout = self._heap[0].due - now if self._heap else None
                self._cond.wait(timeout)
            return None

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            for delivery in batch:
                try:
                    self._deliver(delivery)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _deliver(self, delivery: _Delivery) -> None:
        event = self._load_event(delivery.event_id)
        if event is None or delivery.generation != self._generation:
            return
        entry: JSON = {
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
        if delivery.attempt == 1 and delivery.copy == 1 and self._consume_drop():
            entry["result"] = "dropped"
            self._record(entry, delivery, final=True)
            return
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
