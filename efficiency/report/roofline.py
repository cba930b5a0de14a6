"""Roofline: arithmetic intensity (FLOPs per byte) vs achieved FLOP/s, log-log, per machine.

Where sweep.json gives a machine's ceilings, its roof is drawn: the memory slope
(bandwidth x intensity) up to the compute roof (peak FLOP/s). A point far below
its roof leaves the machine idle (overheads, small kernels); a point on the slope
is limited by memory traffic. Without ceilings only the points are drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib import ticker

from efficiency.report import figures
from efficiency.report.formatting import is_missing

NOT_MEASURED = 'ceilings not measured'


def _ceiling(ceilings: dict[str, Any], machine: str, key: str) -> float | None:
  value = (ceilings.get(machine) or {}).get(key)
  return None if is_missing(value) or float(value) <= 0 else float(value)


def has_ceilings(ceilings: dict[str, Any], machines: list[str]) -> bool:
  return any(_ceiling(ceilings, m, key) for m in machines
             for key in ('peak_flops_per_s', 'bandwidth_bytes_per_s'))


def plot_roofline(rows: pd.DataFrame, ceilings: dict[str, Any], folder: str,
                  name: str = 'roofline') -> dict[str, str]:
  """One colour per hardware_id; `rows` are the successful points of all studies."""
  rows = rows.dropna(subset=['arithmetic_intensity', 'achieved_flops_per_s'])
  rows = rows[(rows['arithmetic_intensity'] > 0) & (rows['achieved_flops_per_s'] > 0)]
  machines = sorted(rows['hardware_id'].dropna().unique())
  with figures.style():
    fig, axes = figures.panels(1)
    ax = axes[0]
    colors = figures.method_colors(machines)
    for machine in machines:
      points = rows[rows['hardware_id'] == machine]
      ax.scatter(points['arithmetic_intensity'], points['achieved_flops_per_s'], s=30,
                 color=colors[machine], label=f'{machine} ({len(points)} points)', zorder=3)
    # The x range covers the points and every ridge point (where the two roofs meet).
    spots = list(rows['arithmetic_intensity']) + [
        _ceiling(ceilings, m, 'peak_flops_per_s') / _ceiling(ceilings, m, 'bandwidth_bytes_per_s')
        for m in machines
        if _ceiling(ceilings, m, 'peak_flops_per_s') and _ceiling(ceilings, m, 'bandwidth_bytes_per_s')]
    lo, hi = (min(spots) / 4, max(spots) * 4) if spots else (0.1, 100.0)
    for machine in machines:
      peak = _ceiling(ceilings, machine, 'peak_flops_per_s')
      bandwidth = _ceiling(ceilings, machine, 'bandwidth_bytes_per_s')
      xs = np.geomspace(lo, hi, 200)
      if bandwidth and peak:
        roof = np.minimum(bandwidth * xs, peak)
      elif bandwidth or peak:
        roof = bandwidth * xs if bandwidth else np.full_like(xs, peak)
      else:
        continue
      ax.plot(xs, roof, color=colors[machine], lw=1.5, ls='--', label=f'{machine} roof')
    if not has_ceilings(ceilings, machines):
      figures.note(ax, NOT_MEASURED)
    if len(rows):
      ax.set_xscale('log')
      ax.set_yscale('log')
      figures.log_ticks(ax.xaxis, [lo, hi])
      figures.log_ticks(ax.yaxis, ax.get_ylim())
      ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f'{v:g}'))
      ax.yaxis.set_major_formatter(ticker.EngFormatter(sep=' '))
    ax.set_xlabel('arithmetic intensity (FLOPs per byte accessed)')
    ax.set_ylabel('achieved FLOP/s (throughput batch)')
    fig.suptitle('Roofline: achieved compute vs arithmetic intensity')
    figures.figure_legend(fig, axes)
    return figures.save_figure(fig, folder, name)
