"""Small inline SVG charts drawn on the server: no JavaScript, no chart library."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 26


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]  # 0..1; None: no value in that bucket (no point drawn)
    css_class: str


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value / top if top else 0))


def _time_label(moment: datetime, unit: str) -> str:
    local = timezone.localtime(moment)
    return local.strftime("%H:%M") if unit == "hour" else local.strftime("%d %b")


def _axes(top_label: str) -> list[str]:
    return [
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{escape(top_label)}</text>',
        f'<text class="tick" x="{LEFT - 4}" y="{HEIGHT - BOTTOM}" text-anchor="end">0</text>',
    ]


def _x_labels(times: list[datetime], unit: str) -> list[str]:
    if not times:
        return []
    picks = sorted({0, len(times) // 2, len(times) - 1})
    return [f'<text class="tick" x="{_x(i, len(times)):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
            f'{escape(_time_label(times[i], unit))}</text>' for i in picks]


def line_chart(*, times: list[datetime], series: list[Series], unit: str, title: str) -> SafeString:
    """Lines of fractions (0..1) over time, y axis 0..100%."""
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>", *_axes("100%"), *_x_labels(times, unit)]
    for line in series:
        drawn = [(i, v) for i, v in enumerate(line.values) if v is not None]
        points = " ".join(f"{_x(i, len(line.values)):.1f},{_y(v, 1.0):.1f}" for i, v in drawn)
        parts.append(f'<polyline class="{escape(line.css_class)}" fill="none" points="{points}"/>')
        for i, v in drawn:
            parts.append(f'<circle class="{escape(line.css_class)}" r="2.5" cx="{_x(i, len(line.values)):.1f}" '
                         f'cy="{_y(v, 1.0):.1f}"><title>{escape(line.name)}: {100 * v:.1f}%</title></circle>')
    parts.append("</svg>")
    # Safe: every interpolated string above is escape()d; the rest are formatted numbers.
    return mark_safe("".join(parts))  # nosec B308 B703


def bar_chart(*, times: list[datetime], counts: list[int], unit: str, title: str) -> SafeString:
    """Counts per time bucket as bars."""
    top = max(counts, default=0) or 1
    slot = (WIDTH - LEFT - RIGHT) / max(len(counts), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>", *_axes(str(top))]
    for i, (moment, count) in enumerate(zip(times, counts)):
        y = _y(count, top)
        parts.append(f'<rect class="bar" x="{LEFT + i * slot + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" '
                     f'height="{HEIGHT - BOTTOM - y:.1f}"><title>{escape(_time_label(moment, unit))}: {count}'
                     f"</title></rect>")
    if times:
        for i in sorted({0, len(times) // 2, len(times) - 1}):
            parts.append(f'<text class="tick" x="{LEFT + (i + 0.5) * slot:.1f}" y="{HEIGHT - 8}" '
                         f'text-anchor="middle">{escape(_time_label(times[i], unit))}</text>')
    parts.append("</svg>")
    # Safe: every interpolated string above is escape()d; the rest are formatted numbers.
    return mark_safe("".join(parts))  # nosec B308 B703
