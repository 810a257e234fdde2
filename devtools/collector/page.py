"""The collector's report as a web page (``GET /`` and ``report --html FILE``): charts, drawn server-side as SVG.

One self-contained HTML document: no script, no CDN, no font or image fetched, so it works offline and is the
same file whether served or written. It shows events per minute by status class, latency p50/p90/p99 per route
over time (the busiest routes), the slowest and the most failing routes, the top users and companies, and the
dead letters by stage and reason. Every chart has its numbers beside it, in text a test (or a screen reader)
can read.
"""
from __future__ import annotations

import html
from collections import Counter, defaultdict
from types import MappingProxyType
from typing import Any

from devtools.collector.report import TOP, percentile
from devtools.collector.store import EventStore
from transforms.model.event import format_epoch_ms, parse_iso_ms

CLASSES = ("2xx", "3xx", "4xx", "5xx", "no response")
CLASS_COLOURS = MappingProxyType(
    {"2xx": "#2e7d32", "3xx": "#0277bd", "4xx": "#f9a825", "5xx": "#c62828", "no response": "#757575"})
PERCENTILE_COLOURS = (("p50", 0.5, "#1565c0"), ("p90", 0.9, "#ef6c00"), ("p99", 0.99, "#c62828"))
ROUTES_OVER_TIME = 6
WIDTH, HEIGHT, MARGIN = 720, 220, 44

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #212121; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 2px 10px; text-align: right; }
td:first-child, th:first-child { text-align: left; font-family: ui-monospace, monospace; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 10px;
  height: 10px; margin-right: 4px; } .grid { display: flex; flex-wrap: wrap; gap: 18px; }
.small h3 { font: 13px ui-monospace, monospace; margin: 4px 0; } svg text { font: 11px system-ui, sans-serif; }
"""


def build_page(store: EventStore, dead_letters: list[dict[str, Any]]) -> str:
    """The whole page for the events in ``store`` and the given dead letters."""
    counts = store.counts()
    rows = store.query("SELECT substr(request_time, 1, 16), route, status, latency_ms FROM events")
    sections = [
        f"<h1>gatewaystream — what the collector received</h1>"
        f"<p id='totals'>events received: <b>{counts['events']}</b> ({counts['distinct_transaction_ids']} distinct "
        f"transaction ids); dead letters: <b>{len(dead_letters)}</b></p>",
        _per_minute_section(rows),
        _latency_section(rows),
        _route_tables(rows),
        _top_section(store),
        _dead_letter_section(dead_letters),
    ]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>gatewaystream report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>")


def _every_minute(minutes: list[str]) -> list[str]:
    """The minutes from the first to the last (``YYYY-MM-DDTHH:MM``), the quiet ones included, so that time is
    to scale; past six hours only the minutes that had events."""
    if len(minutes) < 2:
        return minutes
    first, last = (parse_iso_ms(minute + ":00Z") // 60_000 for minute in (minutes[0], minutes[-1]))
    if last - first > 360:
        return minutes
    return [format_epoch_ms(minute * 60_000)[:16] for minute in range(first, last + 1)]


def _status_class(status: int | None) -> str:
    return "no response" if status is None else f"{status // 100}xx"


def _per_minute_section(rows: list[tuple]) -> str:
    per_minute: dict[str, Counter] = defaultdict(Counter)
    for minute, _, status, _ in rows:
        per_minute[minute][_status_class(status)] += 1
    minutes = _every_minute(sorted(per_minute))
    tallest = max((sum(counter.values()) for counter in per_minute.values()), default=0)
    bars = []
    slot = (WIDTH - 2 * MARGIN) / max(len(minutes), 1)
    for position, minute in enumerate(minutes):
        bottom = HEIGHT - MARGIN
        for name in CLASSES:
            count = per_minute[minute][name]
            if not count:
                continue
            height = (HEIGHT - 2 * MARGIN) * count / tallest
            bottom -= height
            bars.append(f"<rect x='{MARGIN + position * slot + 1:.1f}' y='{bottom:.1f}' width='{max(slot - 2, 1):.1f}'"
                        f" height='{height:.1f}' fill='{CLASS_COLOURS[name]}'><title>{minute} {name}: {count}"
                        f"</title></rect>")
    labels = _time_labels(minutes, slot)
    chart = _svg("events per minute by status class", [*_axes(tallest, "events"), *bars, *labels])
    legend = "".join(f"<span><i style='background:{CLASS_COLOURS[name]}'></i>{name}</span>" for name in CLASSES)
    table_rows = "".join(
        f"<tr><td>{minute[11:]}</td>{''.join(f'<td>{per_minute[minute][name]}</td>' for name in CLASSES)}</tr>"
        for minute in minutes)
    head = "".join(f"<th>{name}</th>" for name in CLASSES)
    return (f"<h2>Events per minute by status class (UTC)</h2><div class='legend'>{legend}</div>{chart}"
            f"<details><summary>numbers</summary><table id='per-minute'><tr><th>minute</th>{head}</tr>{table_rows}"
            f"</table></details>")


def _latency_section(rows: list[tuple]) -> str:
    by_route: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    totals: Counter = Counter()
    for minute, route, _, latency in rows:
        if latency is not None:
            by_route[route][minute].append(latency)
            totals[route] += 1
    minutes = _every_minute(sorted({minute for minute, *_ in rows}))
    charts = []
    for route, _ in totals.most_common(ROUTES_OVER_TIME):
        series = {name: [] for name, *_ in PERCENTILE_COLOURS}
        points = by_route[route]
        highest = max((max(values) for values in points.values()), default=0)
        slot = (WIDTH / 2 - 2 * MARGIN) / max(len(minutes) - 1, 1)
        for position, minute in enumerate(minutes):
            values = sorted(points.get(minute, ()))
            if not values:
                continue
            for name, fraction, _ in PERCENTILE_COLOURS:
                series[name].append((MARGIN + position * slot, percentile(values, fraction)))
        lines = [_polyline(points_of, highest, colour, f"{route} {name}")
                 for (name, _, colour), points_of in zip(PERCENTILE_COLOURS, series.values(), strict=True)]
        ends = [f"<text x='{MARGIN + position * slot:.1f}' y='{HEIGHT - MARGIN + 16}' text-anchor='middle'>"
                f"{minutes[position][11:]}</text>" for position in {0, len(minutes) - 1}]
        svg = _svg(f"latency of {route}", [*_axes(highest, "ms", WIDTH // 2), *lines, *ends], WIDTH // 2)
        charts.append(f"<div class='small'><h3>{html.escape(route)}</h3>{svg}</div>")
    legend = "".join(f"<span><i style='background:{colour}'></i>{name}</span>" for name, _, colour in
                     PERCENTILE_COLOURS)
    return (f"<h2>Latency per route over time (ms, the {ROUTES_OVER_TIME} busiest routes)</h2>"
            f"<div class='legend'>{legend}</div><div class='grid'>{''.join(charts)}</div>")


def _route_tables(rows: list[tuple]) -> str:
    latencies: dict[str, list[int]] = defaultdict(list)
    calls: Counter = Counter()
    failures: Counter = Counter()
    for _, route, status, latency in rows:
        calls[route] += 1
        if status is None or status >= 500:
            failures[route] += 1
        if latency is not None:
            latencies[route].append(latency)
    stats = []
    for route, count in calls.items():
        values = sorted(latencies[route])
        p50, p90, p99 = ((percentile(values, fraction) for fraction in (0.5, 0.9, 0.99)) if values
                         else (None, None, None))
        stats.append((route, count, failures[route], p50, p90, p99))
    slowest = sorted((row for row in stats if row[5] is not None), key=lambda row: (-row[5], row[0]))[:TOP]
    failing = sorted((row for row in stats if row[2]), key=lambda row: (-row[2] / row[1], -row[2], row[0]))[:TOP]
    every = sorted(stats, key=lambda row: (-row[1], row[0]))

    def table(table_id: str, chosen: list[tuple]) -> str:
        body = "".join(
            f"<tr><td>{html.escape(route)}</td><td>{count}</td><td>{failed}</td>"
            f"<td>{100 * failed / count:.1f} %</td><td>{_text(p50)}</td><td>{_text(p90)}</td><td>{_text(p99)}</td></tr>"
            for route, count, failed, p50, p90, p99 in chosen)
        return (f"<table id='{table_id}'><tr><th>route</th><th>calls</th><th>5xx / none</th><th>failing</th>"
                f"<th>p50</th><th>p90</th><th>p99</th></tr>{body}</table>")

    slowest_bars = _bar_chart("slowest routes by p99 (ms)", [(route, p99) for route, *_, p99 in slowest], "#c62828")
    failing_bars = _bar_chart("most failing routes (share of 5xx or no response, %)",
                              [(route, round(100 * failed / count, 1)) for route, count, failed, *_ in failing],
                              "#6a1b9a")
    return (f"<h2>Slowest routes</h2>{slowest_bars}{table('slowest', slowest)}"
            f"<h2>Most failing routes</h2>{failing_bars or '<p>no failing calls</p>'}{table('failing', failing)}"
            f"<h2>Every route</h2>{table('routes', every)}")


def _top_section(store: EventStore) -> str:
    parts = []
    for title, column, colour in (("Top users", "user_id", "#00838f"), ("Top companies", "company_id", "#4e342e")):
        top = store.query(f"SELECT {column}, COUNT(*) AS calls FROM events WHERE {column} IS NOT NULL "
                          f"GROUP BY {column} ORDER BY calls DESC, {column} LIMIT {TOP}")
        chart = _bar_chart(title.lower(), top, colour) if top else "<p>(none identified)</p>"
        parts.append(f"<div><h2>{title}</h2>{chart}</div>")
    return f"<div class='grid'>{''.join(parts)}</div>"


def _dead_letter_section(dead_letters: list[dict[str, Any]]) -> str:
    by_reason = Counter(f"{letter.get('stage')}/{letter.get('reason')}" for letter in dead_letters)
    if not by_reason:
        return "<h2>Dead letters by stage and reason</h2><p id='dead-letters'>none</p>"
    chart = _bar_chart("dead letters by stage and reason", sorted(by_reason.items(), key=lambda item: (-item[1],
                                                                                                       item[0])),
                       "#455a64")
    return f"<h2>Dead letters by stage and reason</h2><div id='dead-letters'>{chart}</div>"


def _bar_chart(title: str, items: list[tuple[str, Any]], colour: str) -> str:
    """Horizontal bars, each labelled with its name and value."""
    if not items:
        return ""
    label_width, bar_width, row = 300, 320, 22
    highest = max(value for _, value in items) or 1
    shapes = []
    for position, (name, value) in enumerate(items):
        y = position * row + 4
        width = max(bar_width * value / highest, 1)
        label = html.escape(str(name) if len(str(name)) <= 46 else str(name)[:45] + "…")
        shapes.append(f"<text x='{label_width - 6}' y='{y + 13}' text-anchor='end'>{label}</text>"
                      f"<rect x='{label_width}' y='{y}' width='{width:.1f}' height='{row - 6}' fill='{colour}'/>"
                      f"<text x='{label_width + width + 4:.1f}' y='{y + 13}'>{value}</text>")
    return _svg(title, shapes, label_width + bar_width + 60, len(items) * row + 8)


def _svg(title: str, shapes: list[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    return (f"<svg role='img' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
            f"<title>{html.escape(title)}</title>{''.join(shapes)}</svg>")


def _axes(highest: float, unit: str, width: int = WIDTH) -> list[str]:
    bottom = HEIGHT - MARGIN
    return [f"<line x1='{MARGIN}' y1='{MARGIN}' x2='{MARGIN}' y2='{bottom}' stroke='#9e9e9e'/>",
            f"<line x1='{MARGIN}' y1='{bottom}' x2='{width - MARGIN}' y2='{bottom}' stroke='#9e9e9e'/>",
            f"<text x='{MARGIN - 4}' y='{MARGIN + 4}' text-anchor='end'>{highest:g}</text>",
            f"<text x='{MARGIN - 4}' y='{bottom}' text-anchor='end'>0</text>",
            f"<text x='{MARGIN}' y='{MARGIN - 8}'>{unit}</text>"]


def _time_labels(minutes: list[str], slot: float) -> list[str]:
    step = max(1, len(minutes) // 8)
    return [f"<text x='{MARGIN + position * slot + slot / 2:.1f}' y='{HEIGHT - MARGIN + 16}' text-anchor='middle'>"
            f"{minute[11:]}</text>" for position, minute in enumerate(minutes) if position % step == 0]


def _polyline(points: list[tuple[float, int]], highest: float, colour: str, title: str) -> str:
    if not points:
        return ""
    scale = (HEIGHT - 2 * MARGIN) / (highest or 1)
    coordinates = " ".join(f"{x:.1f},{HEIGHT - MARGIN - value * scale:.1f}" for x, value in points)
    dots = "".join(f"<circle cx='{x:.1f}' cy='{HEIGHT - MARGIN - value * scale:.1f}' r='2.5' fill='{colour}'/>"
                   for x, value in points)
    return (f"<g><title>{html.escape(title)}</title><polyline points='{coordinates}' fill='none' stroke='{colour}' "
            f"stroke-width='2'/>{dots}</g>")


def _text(value: int | None) -> str:
    return "–" if value is None else str(value)
