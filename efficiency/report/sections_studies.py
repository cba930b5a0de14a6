"""Report sections per study (figures, table of points, failed points) and the budget choice.

Pareto frontiers and budgets are computed per machine (hardware_id) over the
successful points, the base model included; failed points are listed with their
reason and take part in nothing else.
"""

from __future__ import annotations

import pandas as pd

from efficiency.report import formatting as fmt
from efficiency.report.load import Sweep, overrides_text, series_label
from efficiency.report.pareto import best_under_budget, is_pareto_optimal, pareto_front
from efficiency.report.plots import flops_label

BUDGET_FRACTION = 0.5  # budget = this fraction of the base model's cost (stated in the report)
PLOT_CAPTIONS = {
    'flops_accuracy': 'Top-1 accuracy vs FLOPs per example. Dashed steps: Pareto frontier '
                      '(best accuracy reachable at each cost); ringed: Pareto-optimal points; '
                      'star: base model.',
    'latency_accuracy': 'Top-1 accuracy vs median latency at batch 1; error bars span q1 to q3 '
                        '(the IQR) of the timed calls. Dashed steps: Pareto frontier.',
    'flops_latency': 'Median latency at batch 1 vs FLOPs per example, error bars q1 to q3. '
                     'Dotted: latency proportional to FLOPs through the base model; points above '
                     'it are slower than their FLOPs suggest. Ringed: Pareto-optimal by latency '
                     '(accuracy vs latency).',
}


def accuracy_change(accuracy: float, base_accuracy: float | None) -> str:
  if fmt.is_missing(accuracy) or fmt.is_missing(base_accuracy):
    return fmt.MISSING
  return f'{100 * (accuracy - base_accuracy):+.2f} pp'


def latency_cell(row: pd.Series) -> str:
  return (f'{fmt.format_seconds(row["latency_median_s"])} ({fmt.format_seconds(row["latency_q1_s"])}'
          f' – {fmt.format_seconds(row["latency_q3_s"])})')


def _base_accuracy(sweep: Sweep, machine: str) -> float | None:
  base = sweep.base_rows()
  on_machine = base[base['hardware_id'] == machine]
  rows = on_machine if len(on_machine) else base
  return None if rows.empty else float(rows['accuracy'].iloc[0])


def _frontier_marks(rows: pd.DataFrame, base: pd.DataFrame, flops: str) -> pd.Series:
  """'FLOPs', 'latency', 'FLOPs, latency' or '' per row: on which frontier it lies (per machine)."""
  marks = pd.Series('', index=rows.index, dtype=object)
  for machine, machine_rows in rows.groupby('hardware_id', dropna=False):
    machine_base = base[base['hardware_id'] == machine]
    pool = pd.concat([machine_rows, machine_base.drop(machine_rows.index, errors='ignore')])
    for cost, word in ((flops, 'FLOPs'), ('latency_median_s', 'latency')):
      optimal = pool.index[is_pareto_optimal(pool, cost)]
      hit = machine_rows.index.intersection(optimal)
      marks[hit] = marks[hit].map(lambda m, w=word: f'{m}, {w}' if m else w)
  return marks


def points_table(sweep: Sweep, rows: pd.DataFrame, flops: str) -> str:
  """One line per successful point: config, accuracy (and change vs base), costs, frontiers."""
  marks = _frontier_marks(rows, sweep.base_rows(), flops)
  many_machines = rows['hardware_id'].nunique() > 1
  with_protocol = rows['protocol'].nunique() > 1
  ordered = rows.sort_values(['hardware_id', 'method', 'protocol', flops, 'accuracy'],
                             kind='stable')
  headers = ['point', 'method', 'resolution', 'width', 'depth', 'accuracy', 'vs base',
             'params', 'FLOPs', 'latency (q1 – q3)', 'throughput', 'Pareto-optimal by']
  headers = headers + ['machine'] if many_machines else headers
  table = []
  for index, row in ordered.iterrows():
    line = [f'`{row["point_id"]}`', series_label(row['method'], row['protocol'], with_protocol),
            fmt.format_number(row['resolution']), fmt.format_number(row['width']),
            fmt.format_number(row['depth']), fmt.format_percent(row['accuracy']),
            accuracy_change(row['accuracy'], _base_accuracy(sweep, row['hardware_id'])),
            fmt.format_count(row['params']), fmt.format_flops(row[flops]), latency_cell(row),
            fmt.format_rate(row['throughput_per_s'], 'ex/s'), marks[index] or fmt.MISSING]
    table.append(line + [f'`{row["hardware_id"]}`'] if many_machines else line)
  align = ['l', 'l'] + ['r'] * 9 + ['l'] * (2 if many_machines else 1)
  return fmt.markdown_table(headers, table, align)


def failed_table(rows: pd.DataFrame) -> str:
  table = [(f'`{r["point_id"]}`', r['method'], overrides_text(r['overrides']) or fmt.MISSING,
            r['error'] or 'no reason recorded') for _, r in rows.iterrows()]
  return fmt.markdown_table(['point', 'method', 'overrides', 'reason'], table)


def study_section(sweep: Sweep, study: str, figures: dict[str, dict[str, str]], report_dir: str,
                  flops: str) -> str:
  info = (sweep.meta.get('studies') or {}).get(study) or {}
  rows = sweep.ok[sweep.ok['study'] == study]
  failed = sweep.failed[sweep.failed['study'] == study]
  lines = [f'## Study: {info.get("title") or study}', '']
  if info.get('description'):
    lines += [info['description'], '']
  lines += [f'{fmt.plural(len(rows), "point")} succeeded and {len(failed)} failed. FLOPs are '
            f'{flops_label(flops)}; the base model (star) is drawn on every figure for reference.', '']
  for plot, paths in figures.items():
    lines += [fmt.figure_block(paths, report_dir, f'{study}: {plot.replace("_", " vs ")}',
                               PLOT_CAPTIONS[plot]), '']
  if len(rows):
    lines += ['### Points', '', points_table(sweep, rows, flops), '']
  if len(failed):
    lines += ['### Failed points', '',
              'These points are left out of the figures, the tables above and the Pareto '
              'frontiers.', '', failed_table(failed), '']
  return '\n'.join(lines)


def _chosen_line(row: pd.Series | None, base_accuracy: float | None, cost_text: str) -> list[str]:
  if row is None:
    return ['no point fits', fmt.MISSING, fmt.MISSING, fmt.MISSING]
  return [f'`{row["point_id"]}` {row["study"]} / {series_label(row["method"], row["protocol"], True)}',
          fmt.format_percent(row['accuracy']), accuracy_change(row['accuracy'], base_accuracy),
          cost_text]


def tradeoff_section(sweep: Sweep, flops: str) -> str:
  base = sweep.base_rows()
  lines = ['## Pareto front and best trade-off under a budget', '']
  if base.empty:
    return '\n'.join(lines + ['No successful base model row, so no budget can be set.', ''])
  share = f'{BUDGET_FRACTION:g}'
  lines += [f'Budget rule: a FLOPs budget of {share} × the base model\'s FLOPs per example, and a '
            f'latency budget of {share} × the base model\'s median latency at batch 1 on the same '
            'machine. The chosen point is the most accurate successful point of any study within '
            'the budget (the cheaper one on a tie).', '']
  table = []
  for _, base_row in base.iterrows():
    machine = base_row['hardware_id']
    pool = sweep.ok[sweep.ok['hardware_id'] == machine]
    for cost, word, show in ((flops, 'FLOPs', fmt.format_flops),
                             ('latency_median_s', 'latency', fmt.format_seconds)):
      if fmt.is_missing(base_row[cost]):
        table.append([f'`{machine}`', word, fmt.MISSING] + _chosen_line(None, None, ''))
        continue
      budget = BUDGET_FRACTION * base_row[cost]
      chosen = best_under_budget(pool, cost, budget)
      table.append([f'`{machine}`', word, f'≤ {show(budget)} (base {show(base_row[cost])})']
                   + _chosen_line(chosen, base_row['accuracy'],
                                  show(chosen[cost]) if chosen is not None else ''))
  lines += [fmt.markdown_table(['machine', 'budget on', 'budget', 'chosen point', 'accuracy',
                                'vs base', 'cost'], table), '']
  lines += ['### Pareto-optimal points across all studies', '']
  for machine, pool in sweep.ok.groupby('hardware_id', sort=True):
    for cost, word, show in ((flops, 'FLOPs', fmt.format_flops),
                             ('latency_median_s', 'latency', fmt.format_seconds)):
      front = pareto_front(pool.drop_duplicates('point_id'), cost)
      items = [f'`{r["point_id"]}` {series_label(r["method"], r["protocol"], True)} '
               f'{fmt.format_percent(r["accuracy"])} at {show(r[cost])}' for _, r in front.iterrows()]
      lines.append(f'- `{machine}`, accuracy vs {word} ({fmt.plural(len(front), "point")}, '
                   'cheapest first): '
                   + ('; '.join(items) or 'none'))
  return '\n'.join(lines + [''])
