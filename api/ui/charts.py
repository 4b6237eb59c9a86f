"""Server-drawn SVG charts for the billing page: no script, no CDN, no style attribute (colours are
SVG presentation attributes, which the page's CSP allows). Pure functions from numbers to markup;
every label is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from html import escape

from markupsafe import Markup

from db.spend import DailySpend

PALETTE = ("#2456c9", "#e07b00", "#1f9d55", "#b83280", "#6b46c1", "#c53030", "#2c7a7b", "#975a16")
OTHER = "#a0aec0"


def colours(graph_ids: Sequence[str]) -> dict[str, str]:
    return {g: PALETTE[i] if i < len(PALETTE) else OTHER for i, g in enumerate(graph_ids)}


def daily_by_graph(
    spend: Sequence[DailySpend], *, today: date, days: int = 30
) -> tuple[Markup, dict[str, str]]:
    """A stacked bar per day (oldest left), one colour per graph; returns the SVG and the legend."""
    start = today - timedelta(days=days - 1)
    totals: dict[str, int] = {}
    per_day: dict[date, list[DailySpend]] = {}
    for row in spend:
        totals[row.graph_id] = totals.get(row.graph_id, 0) + row.credits
        per_day.setdefault(row.day, []).append(row)
    graphs = sorted(totals, key=lambda g: -totals[g])
    legend = colours(graphs)
    width, height, left, bottom, top = 760, 220, 64, 28, 10
    plot_h = height - bottom - top
    bar_w = (width - left - 10) / days
    peak = max((sum(r.credits for r in rows) for rows in per_day.values()), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="credits per day by graph, last {days} days" id="chart-daily">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#cbd2dc"/>',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" font-size="10" fill="#5f6b7a">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="10" fill="#5f6b7a">0</text>',
    ]
    for i in range(days):
        day = start + timedelta(days=i)
        x = left + i * bar_w
        y: float = top + plot_h
        for row in sorted(per_day.get(day, []), key=lambda r: graphs.index(r.graph_id)):
            h = plot_h * row.credits / peak if peak else 0
            y -= h
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{legend[row.graph_id]}"><title>{day.isoformat()} {escape(row.graph_id)}: '
                f"{row.credits:,} credits</title></rect>"
            )
        if i % 5 == 0 or i == days - 1:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" text-anchor="middle" font-size="10" '
                f'fill="#5f6b7a">{day.strftime("%m-%d")}</text>'
            )
    if peak == 0:
        parts.append(
            f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle" font-size="12" '
            'fill="#5f6b7a">no charges in the last 30 days</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts)), legend


def top_bars(items: Sequence[tuple[str, int, str]]) -> Markup:
    """Horizontal bars, largest first: ``(label, credits, link)``; each bar links to its run."""
    width, row_h, label_w = 760, 22, 220
    height = max(row_h * len(items) + 8, 30)
    peak = max((c for _, c, _ in items), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="top runs by cost" id="chart-top">'
    ]
    for i, (label, value, href) in enumerate(items):
        y = 4 + i * row_h
        w = (width - label_w - 90) * value / peak if peak else 0
        parts.append(
            f'<a href="{escape(href)}"><text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="11" '
            f'fill="#2456c9">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{PALETTE[0]}"/></a>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="11" fill="#5f6b7a">{value:,}</text>'
        )
    if not items:
        parts.append('<text x="10" y="20" font-size="12" fill="#5f6b7a">no charged runs yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
