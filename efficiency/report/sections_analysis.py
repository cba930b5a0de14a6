"""Report sections across studies: FLOPs vs latency ranks, why each method, roofline, wall time."""

from __future__ import annotations

from typing import Any

import pandas as pd

from efficiency.report import formatting as fmt
from efficiency.report.load import Sweep, series_label
from efficiency.report.roofline import NOT_MEASURED
from efficiency.report.stats import rank_correlations, rank_disagreements


def agreement_section(sweep: Sweep, flops: str) -> str:
  """Spearman correlations of FLOPs, params and latency per machine, and the worst disagreements."""
  columns = {'FLOPs': flops, 'params': 'params', 'latency': 'latency_median_s'}
  lines = ['## Where FLOPs and latency disagree', '',
           'Spearman rank correlation (rho) across the distinct successful points of each machine: '
           '1 means the two put the points in the same order, 0 no relation. Latency is the '
           'median at batch 1.', '']
  correlations = rank_correlations(sweep.ok, columns)
  table = [[f'`{c.hardware_id}`', f'{c.x} vs {c.y}', str(c.n),
            f'{c.rho:+.3f}' if c.rho is not None else f'{fmt.MISSING} ({c.reason})']
           for c in correlations]
  lines += [fmt.markdown_table(['machine', 'pair', 'points', 'rho'], table, ['l', 'l', 'r', 'r'])
            if table else 'No successful points.', '']
  worst = rank_disagreements(sweep.ok, flops)
  if worst.empty:
    lines += ['No point ranks differently by FLOPs and by latency (or too few points).', '']
    return '\n'.join(lines)
  lines += ['Points whose rank by FLOPs and rank by latency differ most (rank 1 = cheapest / '
            'fastest; a positive gap means slower than its FLOPs suggest):', '']
  table = [[f'`{r["hardware_id"]}`', f'`{r["point_id"]}`', r['study'],
            series_label(r['method'], r['protocol'], True), fmt.format_flops(r[flops]),
            fmt.format_seconds(r['latency_median_s']), f'{r["cost_rank"]:g}',
            f'{r["latency_rank"]:g}', f'{r["rank_gap"]:+g}']
           for _, r in worst.iterrows()]
  lines += [fmt.markdown_table(['machine', 'point', 'study', 'method', 'FLOPs', 'latency',
                                'FLOPs rank', 'latency rank', 'gap'], table,
                               ['l'] * 4 + ['r'] * 5), '']
  return '\n'.join(lines)


def methods_section(sweep: Sweep) -> str:
  methods = sweep.meta.get('methods') or {}
  used = set(sweep.table['method'].dropna())
  lines = ['## Why these methods', '']
  if not methods:
    return '\n'.join(lines + ['sweep.json describes no methods.', ''])
  table = [(f'`{name}`', description, 'yes' if name in used else 'no')
           for name, description in methods.items()]
  lines += [fmt.markdown_table(['method', 'why it was chosen', 'in the results'], table), '']
  return '\n'.join(lines)


def roofline_section(sweep: Sweep, figure: dict[str, str] | None, report_dir: str) -> str:
  ceilings = sweep.meta.get('ceilings') or {}
  lines = ['## Roofline', '']
  if figure:
    lines += [fmt.figure_block(
        figure, report_dir, 'roofline',
        'Achieved FLOP/s at the throughput batch vs arithmetic intensity (FLOPs per byte, from '
        'the bytes_source column), log-log, one colour per machine. Dashed: the machine\'s roof '
        '(memory slope, then compute ceiling) where sweep.json gives it.'), '']
  table = []
  for machine in sweep.hardware_ids:
    limits = ceilings.get(machine) or {}
    peak, bandwidth = limits.get('peak_flops_per_s'), limits.get('bandwidth_bytes_per_s')
    ridge = (peak / bandwidth if not fmt.is_missing(peak) and not fmt.is_missing(bandwidth)
             and bandwidth > 0 else None)
    table.append([f'`{machine}`', fmt.format_rate(peak, 'FLOP/s'),
                  fmt.format_rate(bandwidth, 'B/s'), fmt.format_number(ridge)])
  if all(row[1] == fmt.MISSING and row[2] == fmt.MISSING for row in table):
    lines += [f'Machine {NOT_MEASURED}: the figure shows the points only.', '']
  else:
    lines += [fmt.markdown_table(['machine', 'peak compute', 'memory bandwidth',
                                  'ridge point (FLOPs/byte)'], table, ['l', 'r', 'r', 'r']), '']
  return '\n'.join(lines)


def _seconds_table(study_seconds: dict[str, Any], stage_seconds: dict[str, Any]) -> str:
  stages = []
  for per_study in stage_seconds.values():
    stages += [s for s in (per_study or {}) if s not in stages]
  studies = list(study_seconds) + [s for s in stage_seconds if s not in study_seconds]
  table = [[study, fmt.format_seconds(study_seconds.get(study))]
           + [fmt.format_seconds((stage_seconds.get(study) or {}).get(s)) for s in stages]
           for study in studies]
  return fmt.markdown_table(['study', 'wall time'] + stages, table,
                            ['l'] + ['r'] * (len(stages) + 1))


def wall_time_section(sweep: Sweep) -> str:
  study_seconds = sweep.meta.get('study_seconds') or {}
  stage_seconds = sweep.meta.get('stage_seconds') or {}
  lines = ['## Wall time', '']
  if study_seconds or stage_seconds:
    lines += ['Wall time of each study and its stages, from sweep.json:', '',
              _seconds_table(study_seconds, stage_seconds), '']
  else:
    lines += ['sweep.json records no study or stage times.', '']
  ok = sweep.ok
  per_point = pd.DataFrame({'train': ok.groupby('study')['train_seconds'].sum(min_count=1),
                            'measure': ok.groupby('study')['measure_seconds'].sum(min_count=1)})
  if not per_point.empty:
    table = [[study, fmt.format_seconds(r['train']), fmt.format_seconds(r['measure'])]
             for study, r in per_point.iterrows()]
    lines += ['Sum over the successful points of the results table:', '',
              fmt.markdown_table(['study', 'training', 'measurement'], table, ['l', 'r', 'r']), '']
  return '\n'.join(lines)
