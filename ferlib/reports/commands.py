"""The `report` command: executed notebooks to HTML, the landing page, and the report check (nbconvert, of the
`[notebooks]` extra, is imported only when it runs)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferlib.config import PROJECT_ROOT
from ferlib.reports.check import check_reports
from ferlib.reports.index import build_index
from ferlib.reports.render import render


def add_report_command(sub) -> None:
    """Add report to the command line's sub-parsers."""
    rep = sub.add_parser("report", help="render executed notebooks to HTML reports and rebuild the landing page")
    rep.add_argument("notebooks", nargs="*", type=Path, help="executed notebooks (outputs/notebooks/NN_*.ipynb)")
    rep.add_argument("--output-dir", type=Path, default=None, help="the run's output folder (default: outputs)")
    rep.add_argument("--check", action="store_true",
                     help="check every rendered report: figures embedded and not blank, no log lines or tracebacks")
    rep.add_argument("--forbid", type=Path, action="append", default=[],
                     help="with --check: a machine path that no report may show (repeatable)")


def run_report_command(args: argparse.Namespace) -> int:
    """Render executed notebooks to HTML, rebuild the landing page, and (with --check) check every report."""
    out = (args.output_dir or PROJECT_ROOT / "outputs").resolve()
    for executed in args.notebooks:
        if not executed.is_file():
            print(f"error: no executed notebook at {executed}", file=sys.stderr)
            return 2
        render(executed, out / "reports")
    print(f"landing page: {build_index(out)}")
    if not args.check:
        return 0
    checks = check_reports(out, forbidden_paths=[str(p) for p in args.forbid])
    for check in checks:
        counts = ", ".join(f"{place} {n}" for place, n in check.figures.items())
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: figures {counts}")
        for problem in check.problems:
            print(f"       - {problem}")
    return 0 if all(c.ok for c in checks) else 1
