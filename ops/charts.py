"""The dashboard's 24-hour chart as inline SVG (no JavaScript library, no
CDN): bars for stock moves per hour (throughput), a line for the web
stack's average propagation lag, each on its own scale."""
from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 720, 180, 48, 56, 12, 24


def _fmt_seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def activity_chart_svg(*, buckets: list[dict]) -> SafeString:
    """SVG of `buckets` (ops.selectors.activity_24h): one bar per hour for
    moves, one point per hour with sends for the average lag."""
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    n = max(len(buckets), 1)
    slot = plot_w / n
    top_moves = max((b["moves"] for b in buckets), default=0) or 1
    lags = [b["lag_avg"] for b in buckets if b["lag_avg"] is not None]
    top_lag = max(lags, default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ops-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="Moves per hour and propagation lag, last 24 hours">',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{PAD_LEFT + plot_w}" '
        f'y2="{PAD_TOP + plot_h}" stroke="#999"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end" font-size="10" '
        f'fill="#417690">{top_moves}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end" font-size="10" fill="#417690">0</text>',
    ]
    if lags:
        parts.append(f'<text x="{PAD_LEFT + plot_w + 4}" y="{PAD_TOP + 8}" font-size="10" '
                     f'fill="#c0392b">{escape(_fmt_seconds(top_lag))}</text>')
    points = []
    for i, bucket in enumerate(buckets):
        x = PAD_LEFT + i * slot
        h = bucket["moves"] / top_moves * plot_h
        label = bucket["hour"].strftime("%H:00")
        title = f"{label}: {bucket['moves']} moves, {bucket['sent']} sent to carts"
        if bucket["lag_avg"] is not None:
            title += f", lag avg {_fmt_seconds(bucket['lag_avg'])} / max {_fmt_seconds(bucket['lag_max'])}"
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{slot - 2:.1f}" '
            f'height="{h:.1f}" fill="#79aec8"><title>{escape(title)}</title></rect>'
        )
        if i % 3 == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="10" '
                         f'fill="#666">{label}</text>')
        if bucket["lag_avg"] is not None:
            y = PAD_TOP + plot_h - bucket["lag_avg"] / top_lag * plot_h
            points.append((x + slot / 2, y, title))
    if points:
        parts.append('<polyline class="lag" fill="none" stroke="#c0392b" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points) + '"/>')
        for x, y, title in points:
            parts.append(f'<circle class="lag-point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#c0392b">'
                         f'<title>{escape(title)}</title></circle>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
