"""The collector's report page (issue 25), loaded in a real browser: headless Chromium (Debian's ``chromium``,
which ``./run_tests.sh`` installs) reads ``GET /`` from the local collector after a pipeline run on the samples."""
import html
import re
import shutil
import subprocess
from collections import Counter

import pytest

from devtools.collector.server import Collector
from devtools.local_services import dead_letters_in
from tests.conftest import ROOT, run_cli

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (./run_tests.sh installs Debian's chromium when run as root)")
    return binary


def browse(url: str, tmp_path, *action: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
                           "--window-size=1280,3200", *action, url],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def table_rows(dom: str, table_id: str) -> dict[str, list[str]]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', dom, re.S)
    assert table, f"no table {table_id} on the page"
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S):
        cells = [html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def test_the_page_shows_routes_counts_and_dead_letters_in_chromium(tmp_path):
    dead_letter_dir = tmp_path / "dead-letters"
    with Collector(str(tmp_path / "collector.db"), dead_letter_dir=dead_letter_dir) as collector:
        result = run_cli("--runner=DirectRunner", "--input=samples/*.jsonl", f"--api_endpoint={collector.url}",
                         f"--dead_letter={dead_letter_dir}", "--company_id_header=X-Org-Id")
        assert result.returncode == 0, result.stderr[-2000:]
        events = collector.store.events()
        letters = dead_letters_in(dead_letter_dir)

        loaded = browse(f"{collector.url}/", tmp_path, "--dump-dom")
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        dom = loaded.stdout
        shot = browse(f"{collector.url}/", tmp_path, f"--screenshot={tmp_path / 'report.png'}")
        assert shot.returncode == 0, shot.stderr[-2000:]

    assert f"events received: <b>{len(events)}</b>" in dom and f"dead letters: <b>{len(letters)}</b>" in dom
    expected_routes = Counter(f"{event['request']['verb']} {event['metadata']['route']}" for event in events)
    shown = table_rows(dom, "routes")
    assert {route: int(cells[0]) for route, cells in shown.items()} == dict(expected_routes)
    assert "GET /v1/orders/{id}" in shown and "GET /v1/orders/10268" not in shown  # ids grouped, not listed
    failing = Counter(f"{event['request']['verb']} {event['metadata']['route']}" for event in events
                      if event.get("response") is None or event["response"]["status"] >= 500)
    assert {route: int(cells[1]) for route, cells in shown.items() if int(cells[1])} == dict(failing)
    for reason, count in Counter(f"{letter['stage']}/{letter['reason']}" for letter in letters).items():
        assert re.search(rf">{re.escape(html.escape(reason))}</text>.*?>{count}</text>", dom, re.S), reason
    assert dom.count("<svg") >= 6  # per-minute bars, per-route latency lines, route, user, company and letter bars

    screenshot = (tmp_path / "report.png").read_bytes()
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(screenshot) > 20_000
    print(f"screenshot: {tmp_path / 'report.png'}")


def test_report_html_writes_the_same_page(tmp_path, collector):
    page = tmp_path / "report.html"
    written = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "devtools.collector", "report", "--db",
         collector.store.path, "--html", str(page)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert written.returncode == 0, written.stderr
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "events received: <b>0</b>" in text
    assert "http://" not in text.replace("http://www.w3.org", "") and "<script" not in text  # works offline
