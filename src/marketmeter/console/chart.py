"""Stacked bar charts as geometry for an SVG template (`macros.html`'s `bar_chart`): drawn
on the server, so the page needs no script, and every bar carries its numbers as a
`<title>` (a tooltip, and text a test can read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from marketmeter.domain.activity import HourlyUsage, RecentActivity

WIDTH = 960
HEIGHT = 240
LEFT = 64
"""Room for the y-axis labels."""
BOTTOM = 28
"""Room for the x-axis labels."""
TOP = 8
COLOURS = 8
"""Series cycle through `.series-0` … `.series-7` (console.css)."""


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class BarChart:
    label: str
    """What the chart shows, for people and screen readers."""
    segments: list[Segment]
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    legend: list[tuple[int, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2 or 5 × 10ⁿ at least `value` (an axis' top)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, 5, 10):
        top = Decimal(step).scaleb(exponent)
        if top >= value:
            return top
    return Decimal(10).scaleb(exponent)  # (unreachable: 10 × 10ⁿ > value)


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def stacked(
    label: str,
    columns: list[tuple[datetime, list[tuple[int, str, Decimal]]]],
    *,
    x_label: str = "%H:%M",
    x_every: int = 1,
    legend: list[tuple[int, str]] | None = None,
) -> BarChart:
    """`columns`: each bar's time and its parts (series, name, value), bottom up."""
    top = _nice_ceiling(
        max((sum((v for _, _, v in parts), Decimal(0)) for _, parts in columns), default=Decimal(0))
    )
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(columns), 1)
    bar = max(slot * 0.8, 1.0)
    segments = []
    x_labels = []
    for i, (at, parts) in enumerate(columns):
        x = LEFT + i * slot + (slot - bar) / 2
        base = Decimal(0)
        for series, name, value in parts:
            if value <= 0:
                continue
            y0 = plot_height * float(base / top)
            y1 = plot_height * float((base + value) / top)
            segments.append(
                Segment(
                    round(x, 2),
                    round(TOP + plot_height - y1, 2),
                    round(bar, 2),
                    round(max(y1 - y0, 0.5), 2),
                    series % COLOURS,
                    f"{at:%Y-%m-%d %H:%M}Z · {name}: {_number(value)}",
                )
            )
            base += value
        if i % x_every == 0:
            x_labels.append((round(x + bar / 2, 2), f"{at:{x_label}}"))
    y_ticks = [
        (round(TOP + plot_height * (1 - f), 2), _number(top * Decimal(str(f))))
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return BarChart(label, segments, y_ticks, x_labels, legend or [])


def usage_chart(usage: HourlyUsage) -> BarChart:
    series = {d: i for i, d in enumerate(usage.dimensions)}
    columns = [
        (
            hour,
            [(series[d], d, usage.cells.get((hour, d), Decimal(0))) for d in usage.dimensions],
        )
        for hour in usage.hours
    ]
    every = max(1, len(columns) // 12)
    days = len(columns) > 24
    return stacked(
        "Usage per hour, stacked by dimension",
        columns,
        x_label="%m-%d %H:%M" if days else "%H:%M",
        x_every=every,
        legend=[(series[d] % COLOURS, d) for d in usage.dimensions],
    )


def activity_chart(activity: RecentActivity) -> BarChart:
    columns = [(m, [(0, "records", Decimal(n))]) for m, n in activity.minutes]
    return stacked("Records received per minute, last hour", columns, x_every=10)
