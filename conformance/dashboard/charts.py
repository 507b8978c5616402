"""Charts as inline SVG, drawn on the server (no script in the page).

Only numbers, dates and phase codes reach the SVG, and every text node still goes through
:func:`markupsafe.escape`. Colours are presentation attributes, not ``style`` attributes, so
the dashboard's CSP needs no ``'unsafe-inline'``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 24, 34, 44

COMPLIANT = "#1b7a3a"
AREA = "#cfe8d6"
DEADLINE = "#b3261e"
OLD_DEADLINE = "#8a8a8a"
TODAY = "#1f5fa8"
GRID = "#e2e2e2"
INK = "#222222"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _d(day: dt.date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _range(phase: Mapping[str, Any], on: dt.date) -> tuple[dt.date, dt.date]:
    days = [step["date"] for step in phase["timeline"]] + [d["date"] for d in phase["deadlines"]] + [on]
    start = min(days) - dt.timedelta(days=60)
    end = max(days) + dt.timedelta(days=60)
    start = dt.date(start.year, 1 if start.month <= 6 else 7, 1)
    return start, end


def timeline_svg(phase: Mapping[str, Any], on: dt.date, *, chart_id: str = "") -> Markup:
    """Councils compliant for one phase over time, with its deadline(s) and the day shown.

    ``phase`` is one entry of :func:`conformance.registry.national.overview_view`'s ``phases``.
    """
    total = max(int(phase["total"]), 1)
    start, end = _range(phase, on)
    span = max((end - start).days, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: dt.date) -> float:
        return LEFT + plot_w * min(max((day - start).days, 0), span) / span

    def y(count: float) -> float:
        return TOP + plot_h * (1 - count / total)

    parts: list[str] = []
    title = f"Phase {phase['code']}: councils compliant over time ({phase['compliant_now']} of {total} on {_d(on)})"
    ident = escape(chart_id or f"timeline-{phase['code']}")
    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{ident}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="{ident}-title">'
    )
    parts.append(f'<title id="{ident}-title">{escape(title)}</title>')
    parts.append(f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>')
    # Grid and y axis at round numbers of councils.
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000) if total / s <= 6), total)
    for count in [*range(0, total, step), total]:
        yy = y(count)
        parts.append(f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{WIDTH - RIGHT}" y2="{yy:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{LEFT - 8}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" fill="{INK}">{count}</text>'
        )
    # x axis: a tick every six months.
    tick = dt.date(start.year, start.month, 1)
    while tick <= end:
        xx = x(tick)
        parts.append(f'<line x1="{xx:.1f}" y1="{TOP + plot_h}" x2="{xx:.1f}" y2="{TOP + plot_h + 5}" stroke="{INK}"/>')
        parts.append(
            f'<text x="{xx:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" font-size="11" fill="{INK}">'
            f"{escape(_MONTHS[tick.month - 1])} {tick.year}</text>"
        )
        tick = dt.date(tick.year + (tick.month + 6 > 12), (tick.month + 5) % 12 + 1, 1)
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="{INK}"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="{INK}"/>'
    )
    # The step line of councils compliant, and the area under it.
    points = [(x(start), y(0))]
    count = 0
    for step in phase["timeline"]:
        xx = x(step["date"])
        points.append((xx, y(count)))
        count = step["compliant"]
        points.append((xx, y(count)))
    points.append((x(end), y(count)))
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    area = f"{x(start):.1f},{y(0):.1f} {line} {x(end):.1f},{y(0):.1f}"
    parts.append(f'<polygon class="area" points="{area}" fill="{AREA}"/>')
    parts.append(f'<polyline class="compliant" points="{line}" fill="none" stroke="{COMPLIANT}" stroke-width="2.5"/>')
    # Deadlines: the one in force solid, earlier ones dashed, each with the count on that day.
    for index, deadline in enumerate(phase["deadlines"]):
        xx = x(deadline["date"])
        colour = DEADLINE if deadline["current"] else OLD_DEADLINE
        dash = "" if deadline["current"] else ' stroke-dasharray="5 4"'
        parts.append(
            f'<line class="deadline" x1="{xx:.1f}" y1="{TOP - 6}" x2="{xx:.1f}" y2="{TOP + plot_h}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
        )
        label = f"{deadline['compliant']} of {total} on {_d(deadline['date'])}"
        anchor = "end" if xx > WIDTH * 0.6 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(
            f'<text x="{xx + dx:.1f}" y="{TOP + 8 + 14 * index}" text-anchor="{anchor}" font-size="12" '
            f'font-weight="bold" fill="{colour}">{escape(label)}</text>'
        )
    # The day shown.
    xx = x(on)
    parts.append(
        f'<line class="today" x1="{xx:.1f}" y1="{TOP}" x2="{xx:.1f}" y2="{TOP + plot_h}" stroke="{TODAY}" '
        f'stroke-width="1.5" stroke-dasharray="2 3"/>'
    )
    parts.append(
        f'<text x="{xx:.1f}" y="{TOP - 12}" text-anchor="middle" font-size="11" fill="{TODAY}">'
        f"{escape(_d(on))}: {phase['compliant_now']}</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_svg(values: Sequence[tuple[str, int]], total: int, *, width: int = 260, height: int = 18) -> Markup:
    """A one-line stacked bar (e.g. compliant / not compliant) with its parts as titles."""
    colours = (COMPLIANT, DEADLINE, OLD_DEADLINE, TODAY)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bar" width="{width}" height="{height}" role="img">']
    x = 0.0
    for (label, value), colour in zip(values, colours):
        w = width * value / max(total, 1)
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        x += w
    parts.append("</svg>")
    return Markup("".join(parts))
