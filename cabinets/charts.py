"""A tray's weight history as inline SVG: no JavaScript and no CDN, so the
admin page works on a closed network and prints as it looks."""
from __future__ import annotations

from decimal import Decimal

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from cabinets.models import WeightReading

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
COLOURS = {
    WeightReading.Outcome.POSTED: "#2e7d32",
    WeightReading.Outcome.UNCHANGED: "#607d8b",
    WeightReading.Outcome.HELD: "#ef6c00",
}


def weight_chart_svg(*, readings: list[WeightReading], threshold_g: Decimal | None = None) -> SafeString:
    """Weight (g) over read time: a line through the readings, a dot per
    reading coloured by outcome (posted, unchanged, held) and, when given,
    the tray's order threshold as a dashed line."""
    if not readings:
        return format_html("<p>{}</p>", "No readings yet.")
    weights = [float(r.weight_g) for r in readings]
    low, high = min(weights), max(weights)
    if threshold_g is not None:
        low, high = min(low, float(threshold_g)), max(high, float(threshold_g))
    if high == low:
        low, high = low - 1, high + 1
    first, last = readings[0].read_at.timestamp(), readings[-1].read_at.timestamp()
    span = (last - first) or 1.0

    def x(reading: WeightReading) -> float:
        return LEFT + (reading.read_at.timestamp() - first) / span * (WIDTH - LEFT - RIGHT)

    def y(grams: float) -> float:
        return TOP + (high - grams) / (high - low) * (HEIGHT - TOP - BOTTOM)

    points = " ".join(f"{x(r):.1f},{y(w):.1f}" for r, w in zip(readings, weights, strict=True))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="weight history of {len(readings)} readings" style="background:#fff;border:1px solid #ddd">',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11">{high:g} g</text>',
        f'<text x="{LEFT - 6}" y="{HEIGHT - BOTTOM}" text-anchor="end" font-size="11">{low:g} g</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 12}" font-size="11">{escape(f"{readings[0].read_at:%Y-%m-%d %H:%M}")}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end" font-size="11">'
        f'{escape(f"{readings[-1].read_at:%Y-%m-%d %H:%M}")}</text>',
        f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{points}"/>',
    ]
    if threshold_g is not None:
        ty = y(float(threshold_g))
        parts.append(
            f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}" stroke="#c62828" '
            f'stroke-dasharray="4 3"><title>order threshold {float(threshold_g):g} g</title></line>'
        )
    for reading, grams in zip(readings, weights, strict=True):
        colour = COLOURS.get(reading.outcome, "#000")
        label = escape(f"{reading.read_at:%Y-%m-%d %H:%M:%S}: {reading.weight_g} g, {reading.get_outcome_display()}")
        parts.append(
            f'<circle cx="{x(reading):.1f}" cy="{y(grams):.1f}" r="2.5" fill="{colour}"><title>{label}</title></circle>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
