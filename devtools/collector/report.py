"""What a user wants to see first about the events a collector holds."""
from __future__ import annotations

import math

from devtools.collector.store import EventStore

TOP = 10


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (no interpolation: every figure is a real latency)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def build_report(store: EventStore) -> str:
    counts = store.counts()
    lines = [f"events received: {counts['events']} ({counts['distinct_transaction_ids']} distinct transaction ids)"]

    by_class = store.query(
        "SELECT CASE WHEN status IS NULL THEN 'no response' ELSE (status / 100) || 'xx' END AS class, COUNT(*) "
        "FROM events GROUP BY class ORDER BY class"
    )
    lines.append("")
    lines.append("events by status class:")
    lines.extend(f"  {name:<12} {count:>8}" for name, count in by_class)

    latencies: dict[str, list[int]] = {}
    for route, latency in store.query("SELECT route, latency_ms FROM events WHERE latency_ms IS NOT NULL"):
        latencies.setdefault(route, []).append(latency)
    lines.append("")
    lines.append("latency per route (ms):")
    lines.append(f"  {'route':<44} {'count':>7} {'p50':>7} {'p90':>7} {'p99':>7}")
    for route, values in sorted(latencies.items(), key=lambda item: -len(item[1]))[:25]:
        values.sort()
        lines.append(
            f"  {route[:44]:<44} {len(values):>7} {percentile(values, 0.5):>7} "
            f"{percentile(values, 0.9):>7} {percentile(values, 0.99):>7}"
        )

    for title, column in (("top users", "user_id"), ("top companies", "company_id")):
        rows = store.query(
            f"SELECT {column}, COUNT(*) AS calls FROM events WHERE {column} IS NOT NULL "
            f"GROUP BY {column} ORDER BY calls DESC, {column} LIMIT {TOP}"
        )
        lines.append("")
        lines.append(f"{title}:")
        lines.extend(f"  {name[:44]:<44} {calls:>7}" for name, calls in rows)
        if not rows:
            lines.append("  (none identified)")
    return "\n".join(lines)
