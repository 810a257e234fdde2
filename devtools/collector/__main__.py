"""``python -m devtools.collector serve --port 8088 --db events.db`` (the report page at ``/``) and ``… report --db
events.db`` (text, or ``--html FILE`` for the same page as a file)."""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from devtools.collector.page import build_page
from devtools.collector.report import build_report
from devtools.collector.server import Collector
from devtools.collector.store import EventStore
from devtools.local_services import dead_letters_in


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.collector", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the collector until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8088)
    serve.add_argument("--db", required=True, help="SQLite file to store events in")
    serve.add_argument("--application-id", default=None,
                       help="accept only this X-Moesif-Application-Id (default: any non-empty one)")
    report = commands.add_parser("report", help="print the report of a collector's database")
    report.add_argument("--db", required=True)
    report.add_argument("--html", type=Path, default=None, help="write the report page to this file instead")
    for command in (serve, report):
        command.add_argument("--dead-letters", type=Path, default=None,
                             help="local dead-letter directory whose dead letters the page shows by stage and reason")
    args = parser.parse_args(argv)

    if args.command == "report":
        store = EventStore(args.db)
        if args.html is None:
            print(build_report(store))
            return 0
        args.html.write_text(build_page(store, dead_letters_in(args.dead_letters) if args.dead_letters else []))
        print(f"report page written to {args.html}")
        return 0
    collector = Collector(args.db, args.host, args.port, args.application_id, args.dead_letters)
    print(f"collector listening on {collector.url}, storing into {args.db}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        collector.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
