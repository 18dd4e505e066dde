"""``slam report RUN_DIR``: one self-contained HTML report of a run.

Example:
    $ slam report demo_run --screenshot
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command("report", "write RUN_DIR/report.html (plots, eval table, audio)",
                  config="slamlm.report.html:ReportConfig", run="slamlm.report.html:run_report",
                  positional=("run_dir",), show="slamlm.report.html:show_report")
