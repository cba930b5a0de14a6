"""A study's three figures: FLOPs vs accuracy, latency vs accuracy, FLOPs vs latency.

Colour = method, marker = protocol (legend 'area (evaluate)' vs 'area
(retrained)' when a study mixes them), a black star = the base model. The Pareto
frontier (cheapest cost for each accuracy) is a dashed step line through ringed
points. Latency is the median at batch 1 with error bars from q1 to q3 (the
IQR). One panel per machine (hardware_id), stacked, sharing axes so machines compare.
"""

from __future__ import annotations

import textwrap
from typing import Iterator

import numpy as np
import pandas as pd

from efficiency.report import figures
from efficiency.report.load import series_label
from efficiency.report.pareto import pareto_front

STUDY_PLOTS = ('flops_accuracy', 'latency_accuracy', 'flops_latency')
ACCURACY_LABEL = 'top-1 accuracy (%)'


def latency_label(unit: str) -> str:
  return f'median latency at batch 1 ({unit})'


def flops_label(flops_column: str) -> str:
  source = 'XLA cost analysis' if flops_column == 'flops_xla' else 'jaxpr count'
  return f'FLOPs per example ({source})'


def _series(rows: pd.DataFrame) -> Iterator[tuple[str, str, str | None, pd.DataFrame]]:
  """(legend label, method, protocol, rows) per method and protocol."""
  with_protocol = rows['protocol'].nunique(dropna=True) > 1
  for (method, protocol), group in rows.groupby(['method', 'protocol'], sort=True, dropna=False):
    protocol = None if protocol != protocol else protocol  # NaN group key -> None
    yield series_label(method, protocol, with_protocol), method, protocol, group


def _iqr_error(rows: pd.DataFrame, time_scale: float) -> np.ndarray:
  """Lower and upper error-bar lengths from the median to q1 and q3 (x time_scale); 0 if unknown."""
  median = rows['latency_median_s'].to_numpy(float)
  low = np.nan_to_num(median - rows['latency_q1_s'].to_numpy(float), nan=0.0)
  high = np.nan_to_num(rows['latency_q3_s'].to_numpy(float) - median, nan=0.0)
  return np.clip(np.stack([low, high]), 0.0, None) * time_scale


def _error_bars(ax, rows: pd.DataFrame, x: str, y: str, x_scale: float, y_scale: float,
                color) -> None:
  """IQR bars on whichever axis is latency (nothing when neither is)."""
  if 'latency_median_s' not in (x, y):
    return
  on_x = x == 'latency_median_s'
  error = {'xerr' if on_x else 'yerr': _iqr_error(rows, x_scale if on_x else y_scale)}
  ax.errorbar(rows[x] * x_scale, rows[y] * y_scale, fmt='none', ecolor=color, alpha=0.6, lw=1,
              capsize=2, **error)


def _draw_points(ax, rows: pd.DataFrame, base: pd.DataFrame, x: str, y: str, colors: dict,
                 x_scale: float = 1.0, y_scale: float = 1.0) -> None:
  """Every series, the base star, and latency error bars on whichever axis is latency."""
  for label, method, protocol, group in _series(rows):
    group = group.dropna(subset=[x, y])
    if group.empty:
      continue
    color = colors.get(str(method), 'grey')
    _error_bars(ax, group, x, y, x_scale, y_scale, color)
    ax.scatter(group[x] * x_scale, group[y] * y_scale, color=color, s=36, alpha=0.9, zorder=3,
               marker=figures.PROTOCOL_MARKERS.get(protocol, 'o'), label=label)
  base = base.dropna(subset=[x, y])
  if not base.empty:
    _error_bars(ax, base, x, y, x_scale, y_scale, 'black')
    ax.scatter(base[x] * x_scale, base[y] * y_scale, label='base model', **figures.BASE_STYLE)


def _ring(ax, xs, ys, label: str) -> None:
  ax.scatter(xs, ys, facecolors='none', edgecolors=figures.FRONTIER_COLOR, s=140, lw=1.3,
             label=label, zorder=4)


def _accuracy_panel(ax, rows: pd.DataFrame, base: pd.DataFrame, cost: str, colors: dict,
                    cost_scale: float) -> None:
  _draw_points(ax, rows, base, cost, 'accuracy', colors, x_scale=cost_scale, y_scale=100)
  candidates = pd.concat([rows, base]).drop_duplicates(['point_id', 'hardware_id'])
  front = pareto_front(candidates, cost)
  if len(front):
    xs, ys = front[cost] * cost_scale, front['accuracy'] * 100
    ax.step(xs, ys, where='post', color=figures.FRONTIER_COLOR, ls='--', lw=1.2,
            label='Pareto frontier', zorder=2)
    _ring(ax, xs, ys, 'Pareto-optimal')


def _flops_latency_panel(ax, rows: pd.DataFrame, base: pd.DataFrame, flops: str,
                         colors: dict, time_scale: float) -> None:
  _draw_points(ax, rows, base, flops, 'latency_median_s', colors, y_scale=time_scale)
  candidates = pd.concat([rows, base]).drop_duplicates(['point_id', 'hardware_id'])
  front = pareto_front(candidates.dropna(subset=[flops]), 'latency_median_s')
  if len(front):
    _ring(ax, front[flops], front['latency_median_s'] * time_scale,
          'Pareto-optimal by latency')
  base = base.dropna(subset=[flops, 'latency_median_s'])
  known = candidates[flops].dropna()
  if len(base) and len(known) > 1 and known.min() > 0:
    xs = np.geomspace(known.min(), known.max(), 50)
    per_flop = base['latency_median_s'].iloc[0] / base[flops].iloc[0]
    ax.plot(xs, xs * per_flop * time_scale, color='0.5', ls=':', lw=1,
            label='latency ∝ FLOPs (via base)')


def _machines(rows: pd.DataFrame) -> list[str]:
  """The study's machines (the base model may have been measured on more)."""
  return sorted(set(rows['hardware_id'].dropna())) or ['']


def _on_machine(rows: pd.DataFrame, hardware_id: str) -> pd.DataFrame:
  return rows[rows['hardware_id'] == hardware_id] if hardware_id else rows


def plot_study(rows: pd.DataFrame, base: pd.DataFrame, *, study: str, title: str, folder: str,
               flops: str, colors: dict[str, tuple]) -> dict[str, dict[str, str]]:
  """Writes <folder>/<study>_<plot>.png/.svg for each of STUDY_PLOTS; returns {plot: paths}.

  `rows` are the study's successful points, `base` the base model's rows (a
  reference star on every panel; it also takes part in the Pareto frontier).
  """
  machines = _machines(rows)
  if machines != ['']:
    base = base[base['hardware_id'].isin(machines)]
  everything = pd.concat([rows, base])
  time_scale, time_unit = figures.time_unit(everything['latency_median_s'])
  cost_of = {'flops_accuracy': (flops, 1.0), 'latency_accuracy': ('latency_median_s', time_scale)}
  names = {'flops_accuracy': 'FLOPs vs accuracy', 'latency_accuracy': 'latency vs accuracy',
           'flops_latency': 'FLOPs vs latency'}
  out = {}
  for plot in STUDY_PLOTS:
    with figures.style():
      fig, axes = figures.panels(len(machines), sharex=True, sharey=True)
      for ax, machine in zip(axes, machines):
        machine_rows, machine_base = _on_machine(rows, machine), _on_machine(base, machine)
        if plot == 'flops_latency':
          _flops_latency_panel(ax, machine_rows, machine_base, flops, colors, time_scale)
        else:
          cost, scale = cost_of[plot]
          _accuracy_panel(ax, machine_rows, machine_base, cost, colors, scale)
        if len(machines) > 1:
          ax.set_title(machine)
      ax = axes[0]  # axes are shared: scales and tick formats set here hold for every panel
      if plot == 'flops_latency':
        figures.set_scale(ax.xaxis, everything[flops])
        figures.set_scale(ax.yaxis, everything['latency_median_s'] * time_scale, prefixes=False)
        x_label, y_label = flops_label(flops), latency_label(time_unit)
      else:
        cost, scale = cost_of[plot]
        figures.set_scale(ax.xaxis, everything[cost] * scale, prefixes=plot == 'flops_accuracy')
        x_label = flops_label(flops) if plot == 'flops_accuracy' else latency_label(time_unit)
        y_label = ACCURACY_LABEL
      axes[-1].set_xlabel(x_label)
      for panel in axes:
        panel.set_ylabel(y_label)
      fig.suptitle(textwrap.fill(f'{title}: {names[plot]}', 64))
      figures.figure_legend(fig, axes)
      out[plot] = figures.save_figure(fig, folder, f'{study}_{plot}')
  return out

