"""Line charts of statistics as SVG geometry (pure: the template draws what this computes).

Server-side SVG needs no JavaScript, obeys the GUI's strict Content-Security-Policy and shows the
same picture in every browser. Gaps in a series (no samples for a while) break the line.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Point = tuple[float, float]  # (unix time, value)


@dataclass(frozen=True)
class Line:
    label: str
    css: str  # class of the path: line-a, line-b, ...
    d: str  # SVG path data
    last: str  # the newest value, formatted


@dataclass(frozen=True)
class Tick:
    pos: float  # pixels along the axis
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]

    @property
    def empty(self) -> bool:
        return not any(line.d for line in self.lines)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= value (and > 0)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10**exp
        if candidate >= value * (1 - 1e-9):
            return candidate
    return 10.0 ** (exp + 1)


def time_step(span: float) -> float:
    """A round tick interval giving about 4 to 8 ticks over ``span`` seconds."""
    for step in (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800):
        if span / step <= 8:
            return float(step)
    return 2592000.0


def _time_label(t: float, step: float) -> str:
    when = dt.datetime.fromtimestamp(t, dt.UTC)
    return when.strftime("%H:%M") if step < 86400 else when.strftime("%m-%d")


def split_runs(points: Sequence[Point], max_gap: float) -> list[list[Point]]:
    """Consecutive points, cut where two samples are more than ``max_gap`` seconds apart."""
    runs: list[list[Point]] = []
    for p in sorted(points):
        if runs and p[0] - runs[-1][-1][0] <= max_gap:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def typical_interval(points: Sequence[Point]) -> float:
    times = sorted(p[0] for p in points)
    gaps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    return gaps[len(gaps) // 2] if gaps else 0.0


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[Point]]],
    *,
    start: float,
    end: float,
    y_max: float | None = None,
    y_format: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = 560,
    height: int = 180,
) -> Chart:
    """Chart ``series`` (label, points) over [start, end]; the y axis runs from 0 to ``y_max`` or a
    round number above the largest value."""
    left, top, right, bottom = 64, 10, 12, 24
    pw, ph = width - left - right, height - top - bottom
    span = max(end - start, 1.0)
    values = [v for _, pts in series for t, v in pts if start <= t <= end and math.isfinite(v)]
    top_value = y_max if y_max is not None else nice_ceiling(max(values, default=0.0))

    def x(t: float) -> float:
        return left + (t - start) / span * pw

    def y(v: float) -> float:
        return top + ph - max(0.0, min(v, top_value)) / top_value * ph

    lines = []
    for i, (label, pts) in enumerate(series):
        shown = [(t, v) for t, v in pts if start <= t <= end and math.isfinite(v)]
        gap = max(typical_interval(shown) * 3, span / 200)
        parts = []
        for run in split_runs(shown, gap):
            coords = [f"{x(t):.1f},{y(v):.1f}" for t, v in run]
            if len(coords) == 1:  # a lone sample: a short tick so it is visible
                px, py = x(run[0][0]), y(run[0][1])
                coords = [f"{px - 1.5:.1f},{py:.1f}", f"{px + 1.5:.1f},{py:.1f}"]
            parts.append("M" + " L".join(coords))
        last = y_format(shown[-1][1]) if shown else "no data"
        lines.append(Line(label, f"line-{'abcdef'[i % 6]}", " ".join(parts), last))

    y_ticks = tuple(Tick(y(top_value * f), y_format(top_value * f)) for f in (0.0, 0.25, 0.5, 0.75, 1.0))
    step = time_step(span)
    first = math.ceil(start / step) * step
    x_ticks = []
    t = first
    while t <= end:
        x_ticks.append(Tick(x(t), _time_label(t, step)))
        t += step
    return Chart(title, width, height, left, top, pw, ph, tuple(lines), y_ticks, tuple(x_ticks))


def format_bytes(value: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def format_percent(value: float) -> str:
    return f"{value:.0f}%" if abs(value) >= 10 or value == 0 else f"{value:.1f}%"
