"""Slots: how a lower layer's page or rule takes contributions from higher layers.

A page that gathers things from several layers belongs to the lowest layer that owns its
frame (the member home to accounts, the paywall to hubs). That layer declares a ``Slot`` and
renders whatever is in it; higher layers add to it in their ``AppConfig.ready``, so no layer
imports one above it::

    # hubs/panels.py (the owner declares the slot and what its entries receive)
    PAYWALL: Slot[PanelProvider] = Slot("hubs.paywall")  # provider(request=, group=)

    # memberships/apps.py (a higher layer adds to it)
    def ready(self) -> None:
        PAYWALL.register(memberships.panels.paywall_offer, order=10)

A slot of page panels holds *providers*: callables taking the slot's keyword arguments and
returning a ``Panel`` (a template and its context) or ``None`` to show nothing. Other slots
hold whatever their owner documents (hubs' access sources, the group editor's parts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Panel:
    """A piece of a page: its template, rendered with the page's context plus ``context``."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


PanelProvider = Callable[..., Panel | None]


class Slot(Generic[T]):
    """A named, ordered list of entries that higher layers fill in ``AppConfig.ready``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: list[tuple[int, int, T]] = []

    def register(self, entry: T, *, order: int = 100) -> T:
        """Add ``entry`` (lower ``order`` first, then by registration). Registering the same
        entry again changes nothing, so a ``ready`` that runs twice adds nothing twice."""
        if all(existing is not entry for _order, _index, existing in self._entries):
            self._entries.append((order, len(self._entries), entry))
            self._entries.sort(key=lambda item: (item[0], item[1]))
        return entry

    def unregister(self, entry: T) -> None:
        self._entries = [item for item in self._entries if item[2] is not entry]

    def __iter__(self) -> Iterator[T]:
        return iter([entry for _order, _index, entry in self._entries])

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Slot {self.name}: {len(self)} entries>"


def panels(slot: Slot[PanelProvider], **arguments: Any) -> list[Panel]:
    """Ask every provider in ``slot`` for its panel, in order; those returning ``None`` show nothing."""
    return [panel for provider in slot if (panel := provider(**arguments)) is not None]
