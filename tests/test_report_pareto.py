"""Pareto frontier, budget choice, rank statistics and number formatting on hand-made examples."""

import math

import numpy as np
import pandas as pd
import pytest

from efficiency.report import formatting as fmt
from efficiency.report.load import normalise_table
from efficiency.report.pareto import best_under_budget, is_pareto_optimal, pareto_front
from efficiency.report.stats import rank_correlations, rank_disagreements


def _points(costs, accuracies):
  return pd.DataFrame({'point_id': [f'p{i}' for i in range(len(costs))], 'cost': costs,
                       'accuracy': accuracies})


def test_pareto_front_on_a_hand_made_example():
  #            p0   p1   p2   p3   p4   p5   p6
  costs = [10.0, 20.0, 20.0, 30.0, 40.0, 5.0, 50.0]
  accuracy = [0.80, 0.85, 0.90, 0.88, 0.95, 0.70, 0.95]
  # p1 loses to p2 (same cost, less accurate), p3 to p2 (dearer, less accurate), p6 to p4 (dearer,
  # as accurate); the rest each buy accuracy with cost.
  front = pareto_front(_points(costs, accuracy), 'cost')
  assert list(front['point_id']) == ['p5', 'p0', 'p2', 'p4']
  assert list(front['cost']) == sorted(front['cost'])
  assert list(is_pareto_optimal(_points(costs, accuracy), 'cost')) == [
      True, False, True, False, True, True, False]


def test_pareto_front_ignores_missing_values_and_keeps_one_of_identical_points():
  rows = _points([1.0, float('nan'), 2.0, 2.0, 3.0], [0.5, 0.99, 0.7, 0.7, None])
  front = pareto_front(rows, 'cost')
  assert list(front['point_id']) == ['p0', 'p2']
  assert pareto_front(rows.iloc[0:0], 'cost').empty


def test_best_under_budget_takes_the_most_accurate_and_the_cheaper_on_a_tie():
  rows = _points([10.0, 20.0, 30.0, 15.0, 40.0], [0.80, 0.90, 0.95, 0.90, 0.99])
  assert best_under_budget(rows, 'cost', 30.0)['point_id'] == 'p2'
  assert best_under_budget(rows, 'cost', 29.0)['point_id'] == 'p3'  # p1 ties, costs more
  assert best_under_budget(rows, 'cost', 9.9) is None


def _machine(hardware_id, flops, latency, params=None):
  n = len(flops)
  return pd.DataFrame({'point_id': [f'{hardware_id}{i}' for i in range(n)],
                       'hardware_id': hardware_id, 'flops': flops,
                       'params': params if params is not None else flops,
                       'latency': latency})


def test_rank_correlations_per_machine():
  rows = pd.concat([_machine('a', [1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]),
                    _machine('b', [1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1]),
                    _machine('c', [1, 2], [0.1, 0.2]),
                    _machine('d', [1, 2, 3], [0.5, 0.5, 0.5])])
  result = {(c.hardware_id, c.x, c.y): c
            for c in rank_correlations(rows, {'FLOPs': 'flops', 'latency': 'latency'})}
  assert result[('a', 'FLOPs', 'latency')].rho == pytest.approx(1.0)
  assert result[('b', 'FLOPs', 'latency')].rho == pytest.approx(-1.0)
  assert result[('c', 'FLOPs', 'latency')].rho is None
  assert '2 points' in result[('c', 'FLOPs', 'latency')].reason
  assert result[('d', 'FLOPs', 'latency')].rho is None
  partial = _machine('e', [1, 2, 3, 4, 5], [0.1, 0.3, 0.2, 0.4, 0.5])
  expected = 1 - 6 * (1 + 1) / (5 * (25 - 1))  # Spearman's formula, one swapped pair
  assert rank_correlations(partial, {'F': 'flops', 'L': 'latency'})[0].rho == pytest.approx(expected)


def test_rank_disagreements_name_the_swapped_points():
  rows = _machine('a', [1, 2, 3, 4, 5, 6], [0.1, 0.2, 0.6, 0.4, 0.5, 0.3])
  worst = rank_disagreements(rows, 'flops', 'latency', top=2)
  # a2 has FLOPs rank 3 but latency rank 6 (+3); a5 has FLOPs rank 6 but latency rank 3 (-3).
  assert set(worst['point_id']) == {'a2', 'a5'}
  assert sorted(worst['rank_gap']) == [-3.0, 3.0]
  assert rank_disagreements(_machine('b', [1, 2, 3], [1, 2, 3]), 'flops', 'latency').empty


def test_formatting_helpers():
  assert fmt.format_flops(2.1e6) == '2.10 MFLOPs'
  assert fmt.format_flops(398_000) == '398 kFLOPs'
  assert fmt.format_flops(12.0) == '12.0 FLOPs'
  assert fmt.format_seconds(0.00123) == '1.23 ms'
  assert fmt.format_seconds(5e-6) == '5.00 µs'
  assert fmt.format_seconds(2.5) == '2.50 s'
  assert fmt.format_seconds(300) == '5.00 min'
  assert fmt.format_bytes(2048) == '2.00 KiB'
  assert fmt.format_percent(0.97333) == '97.33%'
  assert fmt.format_count(1234) == '1,234' and fmt.format_count(123_456) == '123 k'
  for missing in (None, float('nan'), math.inf, ''):
    assert fmt.format_seconds(missing) == fmt.MISSING
    assert fmt.format_flops(missing) == fmt.MISSING
  table = fmt.markdown_table(['a', 'b'], [['x|y', 1]], ['l', 'r'])
  assert table.splitlines() == ['| a | b |', '| --- | ---: |', '| x\\|y | 1 |']
  with pytest.raises(ValueError):
    fmt.markdown_table(['a', 'b'], [['only one']])


def test_normalise_table_fills_missing_columns():
  table = normalise_table(pd.DataFrame({'point_id': ['x'], 'status': ['ok'], 'flops_xla': ['12']}))
  assert table['flops_xla'].iloc[0] == 12.0
  assert np.isnan(table['latency_median_s'].iloc[0])
  assert table['error'].iloc[0] is None
