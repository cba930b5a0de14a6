"""The base model's latency distribution: per-call trace and histogram, one panel per machine.

The trace shows every timed call in order (drift, warm-up left over, periodic
hiccups) with the first call after compilation (`first_call_s`, kept out of the
statistics) drawn separately at index 0. The histogram marks the median, p90 and
p99 taken from the results table, i.e. from the same statistics the tables show.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from efficiency.report import figures
from efficiency.report.formatting import format_seconds

# (table column, legend word, line style) for the histogram's vertical lines.
MARKED_QUANTILES = (('latency_median_s', 'median', '-'), ('latency_p90_s', 'p90', '--'),
                    ('latency_p99_s', 'p99', ':'))


def _title(machine: str, count: int) -> str:
  return machine if count > 1 else ''


def plot_latency_trace(traces: dict[str, dict[str, Any]], folder: str,
                       name: str = 'base_latency_trace') -> dict[str, str]:
  """Call index vs latency (ms or µs) per machine; traces = {hardware_id: latency_samples(...)}."""
  with figures.style():
    fig, axes = figures.panels(len(traces), sharey=False)
    for ax, (machine, trace) in zip(axes, traces.items()):
      scale, unit = figures.time_unit(trace['samples_s'])
      samples = np.asarray(trace['samples_s'], dtype=float) * scale
      index = np.arange(1, samples.size + 1)
      dense = samples.size > 500  # thousands of joined points would merge into a blob
      ax.plot(index, samples, lw=0 if dense else 0.8, marker='.', ms=2 if dense else 3,
              color='tab:blue', label='timed calls')
      values = list(samples)
      if trace.get('first_call_s') is not None:
        first = trace['first_call_s'] * scale
        values.append(first)
        ax.scatter([0], [first], color='tab:red', marker='X', s=70, zorder=4,
                   label='first call (not in the statistics)')
        ax.annotate(f'first call {format_seconds(trace["first_call_s"])}', (0, first),
                    textcoords='offset points',
                    xytext=(8, -4), fontsize=9, color='tab:red', va='top')
      ax.axhline(np.median(samples), color='0.3', ls='--', lw=1, label='median of timed calls')
      figures.set_scale(ax.yaxis, values, prefixes=False)
      ax.set_xlabel('call index (0 = first call after compilation)')
      ax.set_ylabel(f'latency at batch 1 ({unit})')
      ax.set_title(_title(machine, len(traces)))
    fig.suptitle('Base model: latency of each call')
    figures.figure_legend(fig, axes)
    return figures.save_figure(fig, folder, name)


def plot_latency_histogram(traces: dict[str, dict[str, Any]], stats: dict[str, dict[str, float]],
                           folder: str, name: str = 'base_latency_histogram') -> dict[str, str]:
  """Histogram of the timed calls (ms or µs) per machine with median/p90/p99 lines from `stats`.

  stats = {hardware_id: the base row of the results table (latency_*_s columns)}.
  """
  with figures.style():
    fig, axes = figures.panels(len(traces))
    for ax, (machine, trace) in zip(axes, traces.items()):
      scale, unit = figures.time_unit(trace['samples_s'])
      samples = np.asarray(trace['samples_s'], dtype=float) * scale
      count = min(max(samples.size // 4, 10), 60)
      # A long tail (max/min > 20) gets log-spaced bins on a log axis, so the bulk stays visible.
      log = figures.wants_log(samples)
      bins = np.geomspace(samples.min(), samples.max(), count + 1) if log else count
      ax.hist(samples, bins=bins, color='tab:blue', alpha=0.7, label=f'{samples.size} timed calls')
      figures.set_scale(ax.xaxis, samples, prefixes=False)  # log exactly when `log`
      row = stats.get(machine, {})
      for column, word, line in MARKED_QUANTILES:
        value = row.get(column)
        if value is not None and np.isfinite(value):
          ax.axvline(value * scale, color='black', ls=line, lw=1.2, label=word)
      ax.set_xlabel(f'latency at batch 1 ({unit})')
      ax.set_ylabel('calls')
      ax.set_title(_title(machine, len(traces)))
    fig.suptitle('Base model: distribution of per-call latency')
    figures.figure_legend(fig, axes)
    return figures.save_figure(fig, folder, name)
