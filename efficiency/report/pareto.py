"""Pareto frontiers (minimise a cost, maximise accuracy) and the best point under a budget.

A point is Pareto-optimal when no other point is at least as cheap and at least as
accurate while being strictly better in one of the two. Rows with a missing cost
or accuracy take no part.
"""

from __future__ import annotations

import pandas as pd


def _complete(rows: pd.DataFrame, cost: str, quality: str) -> pd.DataFrame:
  return rows[rows[cost].notna() & rows[quality].notna()]


def pareto_front(rows: pd.DataFrame, cost: str, quality: str = 'accuracy') -> pd.DataFrame:
  """The Pareto-optimal rows, sorted by increasing cost (and so increasing quality).

  Of several rows with the same cost and quality only the first is kept.
  """
  candidates = _complete(rows, cost, quality)
  # Cheapest first; among equal costs the most accurate first, so it shadows the rest.
  ordered = candidates.sort_values([cost, quality], ascending=[True, False], kind='stable')
  keep = []
  best = float('-inf')
  for index, value in ordered[quality].items():
    if value > best:
      keep.append(index)
      best = value
  return ordered.loc[keep]


def is_pareto_optimal(rows: pd.DataFrame, cost: str, quality: str = 'accuracy') -> pd.Series:
  """A boolean Series aligned with `rows`: True for the rows on the frontier."""
  return rows.index.isin(pareto_front(rows, cost, quality).index)


def best_under_budget(rows: pd.DataFrame, cost: str, budget: float,
                      quality: str = 'accuracy') -> pd.Series | None:
  """The most accurate row with cost <= budget (the cheaper one on a tie), or None if none fits."""
  candidates = _complete(rows, cost, quality)
  candidates = candidates[candidates[cost] <= budget]
  if candidates.empty:
    return None
  ordered = candidates.sort_values([quality, cost], ascending=[False, True], kind='stable')
  return ordered.iloc[0]
