"""Charts drawn on the server as inline SVG: no script, so they show with JavaScript off, and
every point carries its label and value (a ``<title>`` and ``data-*`` attributes) for screen
readers, tests and anyone hovering. The pages print the same figures in a table beside them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    value: int
    value_label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: list[Point]
    # The baseline's y (value 0) and the polyline's ``points`` attribute.
    zero_y: float
    polyline: str
    maximum_label: str
    minimum_label: str

    @property
    def bar_width(self) -> float:
        return max(1.0, (self.width / max(len(self.points), 1)) * 0.7)


def line_chart(
    values: Sequence[int],
    labels: Sequence[str],
    value_labels: Sequence[str] | None = None,
    *,
    width: int = 120,
    height: int = 32,
    padding: int = 3,
) -> Chart:
    """Scale ``values`` into a ``width`` by ``height`` box (the y axis from the smallest of 0 and
    the values to the largest): integers in, coordinates out, rounded to a tenth of a unit."""
    value_labels = list(value_labels) if value_labels is not None else [str(value) for value in values]
    low = min([0, *values])
    high = max([0, *values])
    span = (high - low) or 1
    step = (width - 2 * padding) / max(len(values) - 1, 1)

    def y_of(value: int) -> float:
        return round(height - padding - (value - low) * (height - 2 * padding) / span, 1)

    points = [
        Point(x=round(padding + position * step, 1), y=y_of(value), label=label, value=value, value_label=value_label)
        for position, (value, label, value_label) in enumerate(zip(values, labels, value_labels, strict=True))
    ]
    high_position = list(values).index(high) if high in values else None
    low_position = list(values).index(low) if low in values else None
    return Chart(
        width=width,
        height=height,
        points=points,
        zero_y=y_of(0),
        polyline=" ".join(f"{point.x},{point.y}" for point in points),
        maximum_label=value_labels[high_position] if high_position is not None else "0",
        minimum_label=value_labels[low_position] if low_position is not None else "0",
    )
