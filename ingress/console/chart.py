"""Calls per minute by outcome as a stacked bar chart: the geometry, computed here, drawn as inline SVG by the
overview template (no script, no image request; colours come from the stylesheet by outcome class)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.clock import rfc3339
from ingress.console.figures import OUTCOMES, Totals

WIDTH = 720
HEIGHT = 180
LEFT = 44  # room for the y-axis labels
BOTTOM = 20  # room for the time labels
TOP = 8
SLOTS = 60  # one bar a minute for an hour


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    outcome: str
    title: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    y_labels: tuple[Label, ...]
    x_labels: tuple[Label, ...]
    grid: tuple[float, ...]
    empty: bool


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # not reached


def hhmm(at: float) -> str:
    return rfc3339(at)[11:16]


def calls_chart(minutes: Sequence[tuple[float, Totals]], now: float) -> Chart:
    """Bars for the intervals of the last hour (`CallHistory.per_minute`), placed by their start time."""
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - TOP - BOTTOM
    slot = plot_w / SLOTS
    start = now - SLOTS * 60
    top = nice_ceiling(max((sum(t.values()) for _, t in minutes), default=0))
    bars: list[Bar] = []
    for at, totals in minutes:
        x = LEFT + max(0.0, (at - start) / 60) * slot
        base = TOP + plot_h
        for outcome in (*OUTCOMES, *sorted(set(totals) - set(OUTCOMES))):
            count = totals.get(outcome, 0)
            if count <= 0:
                continue
            h = plot_h * count / top
            base -= h
            bars.append(Bar(round(x + 1, 1), round(base, 1), round(slot - 2, 1), round(h, 1), outcome,
                            f"{hhmm(at)} {outcome}: {count}"))
    grid = tuple(round(TOP + plot_h * (1 - f), 1) for f in (0, 0.5, 1))  # bottom, middle, top
    y_labels = tuple(Label(LEFT - 6, y + 4, text) for y, text in zip(grid, ("0", f"{top / 2:g}", f"{top}"),
                                                                      strict=True))
    x_labels = tuple(Label(LEFT + plot_w * f, HEIGHT - 4, hhmm(start + SLOTS * 60 * f)) for f in (0, 0.5, 1))
    return Chart(WIDTH, HEIGHT, tuple(bars), y_labels, x_labels, grid, empty=not bars)
