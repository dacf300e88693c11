"""Reporting: long-tail metrics, tables and report files."""

from .metrics import build_report
from .multilabel import build_multilabel_report
from .tables import format_report, write_report

__all__ = ["build_multilabel_report", "build_report", "format_report", "write_report"]
