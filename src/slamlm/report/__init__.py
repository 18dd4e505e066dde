"""HTML run report: plots, evaluation table, audio players, configs."""

from slamlm.report.html import build_report

__all__ = ["build_report"]
