"""Do FLOPs predict latency? Spearman rank correlations per machine, and the worst disagreements.

Ranks, not values, are compared: a cost model is useful for choosing a model if
it orders models as the clock does, even when it is off by a constant factor.
Rows of different machines are never mixed (latency depends on the machine).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

MIN_POINTS = 3


@dataclasses.dataclass(frozen=True)
class RankCorrelation:
  """Spearman's rho between two columns over the points of one machine."""
  hardware_id: str
  x: str
  y: str
  n: int
  rho: float | None  # None when it cannot be computed; `reason` says why
  reason: str = ''


def _distinct_points(rows: pd.DataFrame) -> pd.DataFrame:
  """One row per point_id (a point evaluated under two studies counts once)."""
  return rows.drop_duplicates('point_id') if 'point_id' in rows else rows


def rank_correlations(rows: pd.DataFrame, columns: dict[str, str]) -> list[RankCorrelation]:
  """Spearman's rho for every pair of `columns` ({label: column}) on each hardware_id."""
  out = []
  for hardware_id, machine_rows in rows.groupby('hardware_id', sort=True):
    machine_rows = _distinct_points(machine_rows)
    for (x_label, x), (y_label, y) in itertools.combinations(columns.items(), 2):
      pair = machine_rows[[x, y]].dropna()
      n = len(pair)
      if n < MIN_POINTS:
        out.append(RankCorrelation(hardware_id, x_label, y_label, n, None,
                                   f'{n} point{"" if n == 1 else "s"} with both values, '
                                   f'need {MIN_POINTS}'))
        continue
      if pair[x].nunique() < 2 or pair[y].nunique() < 2:
        out.append(RankCorrelation(hardware_id, x_label, y_label, n, None,
                                   'one of the two is the same for every point'))
        continue
      rho = scipy_stats.spearmanr(pair[x], pair[y]).statistic
      out.append(RankCorrelation(hardware_id, x_label, y_label, n, float(rho)))
  return out


def rank_disagreements(rows: pd.DataFrame, cost: str, latency: str = 'latency_median_s',
                       top: int = 3) -> pd.DataFrame:
  """The points of each machine whose `cost` rank and latency rank differ most.

  Returns the rows with added columns cost_rank, latency_rank (1 = cheapest /
  fastest, ties share the average rank) and rank_gap = latency_rank - cost_rank
  (positive: slower than its FLOPs suggest), the `top` largest |rank_gap| per
  hardware_id, points with a gap of zero left out.
  """
  parts = []
  for _, machine_rows in rows.groupby('hardware_id', sort=True):
    machine_rows = _distinct_points(machine_rows).dropna(subset=[cost, latency]).copy()
    if len(machine_rows) < MIN_POINTS:
      continue
    machine_rows['cost_rank'] = machine_rows[cost].rank(method='average')
    machine_rows['latency_rank'] = machine_rows[latency].rank(method='average')
    machine_rows['rank_gap'] = machine_rows['latency_rank'] - machine_rows['cost_rank']
    machine_rows = machine_rows[machine_rows['rank_gap'] != 0]
    order = np.argsort(-machine_rows['rank_gap'].abs().to_numpy(), kind='stable')
    parts.append(machine_rows.iloc[order[:top]])
  return pd.concat(parts) if parts else rows.iloc[0:0].assign(cost_rank=[], latency_rank=[],
                                                               rank_gap=[])
