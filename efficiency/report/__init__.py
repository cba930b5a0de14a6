"""The sweep report: Pareto fronts, figures and a Markdown report written from a sweep workdir.

`write_report(workdir)` reads only the workdir's files (results table, sweep.json,
measure.json) and writes report/report.md with its figures in report/figures/.
Names are imported on first use, so `efficiency.report.console` stays cheap to
import (no matplotlib, pandas or scipy until a report is drawn).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    'write_report': 'markdown', 'load_sweep': 'load', 'Sweep': 'load',
    'pareto_front': 'pareto', 'is_pareto_optimal': 'pareto', 'best_under_budget': 'pareto',
    'plot_study': 'plots', 'plot_latency_trace': 'latency_plots',
    'plot_latency_histogram': 'latency_plots', 'plot_roofline': 'roofline',
    'rank_correlations': 'stats', 'rank_disagreements': 'stats',
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)


def __dir__() -> list[str]:
  return sorted(list(globals()) + __all__)
