"""``slam report RUN_DIR``: one self-contained HTML report of a run."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write RUN_DIR/report.html (plots, eval table, audio)")
    p.add_argument("run_dir", help="a run folder (anything slam wrote: metrics, results, generations)")
    p.add_argument("--out", default=None, help="output HTML path (default RUN_DIR/report.html)")
    p.add_argument("--screenshot", action="store_true",
                   help="also save report.png with headless Chromium and check that it renders")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from slamlm.report.html import build_report

    out = build_report(Path(args.run_dir), args.out)
    print(f"report: {out}")
    if args.screenshot:
        from slamlm.report.browser import render_check, screenshot

        png = screenshot(out, out.with_suffix(".png"))
        print(f"screenshot: {png}; rendered: {render_check(out)}")
    return 0
