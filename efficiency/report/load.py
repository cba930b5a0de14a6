"""Reads a sweep workdir for the report: the results table, sweep.json and raw latency samples.

Only files are read (the contract in WORKSPACE.md); nothing here trains or
measures. Columns the report derives from the table (the FLOPs column used for
plots, legend labels) are defined here once so every figure and table agrees.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
import pandas as pd

from efficiency import workdir as wd
from efficiency.errors import WorkdirError

NUMERIC_COLUMNS = (
    'device_count', 'width', 'depth', 'resolution', 'epochs', 'seed', 'accuracy', 'test_loss',
    'params', 'params_other', 'params_bytes', 'flops_xla', 'flops_jaxpr', 'macs', 'flops_ratio',
    'bytes_per_example', 'arithmetic_intensity', 'latency_median_s', 'latency_mean_s',
    'latency_std_s', 'latency_min_s', 'latency_max_s', 'latency_q1_s', 'latency_q3_s',
    'latency_iqr_s', 'latency_p10_s', 'latency_p90_s', 'latency_p99_s', 'latency_outliers',
    'latency_n', 'latency_first_call_s', 'compile_s', 'throughput_batch', 'throughput_per_s',
    'achieved_flops_per_s', 'train_seconds', 'measure_seconds')
TEXT_COLUMNS = ('point_id', 'study', 'method', 'protocol', 'overrides', 'status', 'error',
                'point_workdir', 'hardware_id', 'backend', 'dataset', 'model', 'resize',
                'flops_xla_note', 'bytes_source')
# How a protocol reads in a legend: 'area (evaluate)' vs 'area (retrained)'.
PROTOCOL_LABELS = {'train': 'retrained', 'evaluate': 'evaluate', 'distill': 'distilled'}


@dataclasses.dataclass
class Sweep:
  """Everything the report reads from one (possibly combined) sweep workdir."""
  workdir: str
  table: pd.DataFrame  # every row, failed ones included
  meta: dict[str, Any]  # sweep.json

  @property
  def ok(self) -> pd.DataFrame:
    return self.table[self.table['status'] == 'ok']

  @property
  def failed(self) -> pd.DataFrame:
    return self.table[self.table['status'] != 'ok']

  @property
  def hardware_ids(self) -> list[str]:
    return sorted(self.table['hardware_id'].dropna().astype(str).unique())

  def base_rows(self) -> pd.DataFrame:
    """The base model's rows, one per machine: sweep.json's base_point (its 'base' study row
    first, as a point may belong to several studies), else the rows of study 'base'."""
    ok = self.ok
    rows = ok[ok['point_id'] == self.meta.get('base_point')]
    rows = rows if len(rows) else ok[ok['study'] == 'base']
    rows = rows.assign(_not_base=rows['study'] != 'base').sort_values('_not_base', kind='stable')
    return rows.drop_duplicates('hardware_id').drop(columns='_not_base').sort_index()


def _read_table(workdir: str) -> pd.DataFrame:
  jsonl = os.path.join(workdir, 'results.jsonl')
  csv = os.path.join(workdir, 'results.csv')
  if os.path.exists(jsonl):
    rows = wd.read_jsonl(jsonl)
    table = pd.DataFrame(rows)
  elif os.path.exists(csv):
    try:
      table = pd.read_csv(csv, dtype={'point_id': str})
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
      raise WorkdirError(f'{csv} is corrupt ({e}); rerun the sweep to rewrite it.') from None
  else:
    raise WorkdirError(f'{workdir} holds neither results.jsonl nor results.csv: run the sweep first '
                       '(benchmark.py --config=... --workdir=...).')
  if table.empty or 'status' not in table.columns:
    raise WorkdirError(f'{workdir}: the results table has no rows with a status column; '
                       'rerun the sweep to rewrite it.')
  return table


def normalise_table(table: pd.DataFrame) -> pd.DataFrame:
  """Every contract column present, numbers as floats (NaN when missing), text as str or None."""
  table = table.copy()
  for column in NUMERIC_COLUMNS:
    table[column] = pd.to_numeric(table[column], errors='coerce') if column in table else np.nan
  for column in TEXT_COLUMNS:
    if column not in table:
      table[column] = None
    table[column] = table[column].map(lambda v: None if v is None or v != v else str(v))
  table['antialias'] = table['antialias'] if 'antialias' in table else None
  return table.reset_index(drop=True)


def load_sweep(workdir: str) -> Sweep:
  """Reads results.jsonl (or results.csv) and sweep.json; raises WorkdirError naming a bad file."""
  workdir = os.path.abspath(os.path.expanduser(workdir))
  meta = wd.read_json(os.path.join(workdir, 'sweep.json'))
  if not isinstance(meta, dict):
    raise WorkdirError(f'{os.path.join(workdir, "sweep.json")} holds {type(meta).__name__}, '
                       'expected a JSON object; rerun the sweep to rewrite it.')
  return Sweep(workdir, normalise_table(_read_table(workdir)), meta)


def _find_key(record: Any, key: str) -> Any:
  """The first value under `key` in a nested dict (breadth first), else None."""
  queue = [record]
  while queue:
    node = queue.pop(0)
    if isinstance(node, dict):
      if key in node:
        return node[key]
      queue.extend(v for v in node.values() if isinstance(v, dict))
  return None


def latency_samples(sweep: Sweep, row: pd.Series) -> tuple[dict[str, Any] | None, str]:
  """(samples, '') or (None, reason): raw per-call latencies of a point from its measure.json.

  samples = {'samples_s': list of timed calls, 'first_call_s': the first call (not in
  samples_s) or None}.
  """
  if not row.get('point_workdir'):
    return None, f'point {row["point_id"]} has no point_workdir in the results table'
  # os.path.join keeps an absolute point_workdir as is (combined sweeps may store one).
  path = os.path.join(sweep.workdir, row['point_workdir'], 'measure.json')
  try:
    record = wd.read_json(path)
  except WorkdirError as e:
    return None, str(e)
  # measure_model keeps the batch-1 timing under 'latency' (the throughput batch's elsewhere).
  timing = record.get('latency') if isinstance(record, dict) else None
  timing = timing if isinstance(timing, dict) and 'samples_s' in timing else record
  samples = _find_key(timing, 'samples_s')
  if not isinstance(samples, list) or not samples:
    return None, f'{path} holds no latency samples (samples_s)'
  values = [float(s) for s in samples if s is not None]
  first = _find_key(timing, 'first_call_s')
  return {'samples_s': values, 'first_call_s': None if first is None else float(first)}, ''


def flops_column(rows: pd.DataFrame) -> str:
  """'flops_xla' when XLA counted every row, else 'flops_jaxpr' (one source for a whole figure)."""
  if len(rows) and rows['flops_xla'].notna().all():
    return 'flops_xla'
  return 'flops_jaxpr'


def series_label(method: Any, protocol: Any, with_protocol: bool) -> str:
  """Legend label of a method, e.g. 'area (evaluate)' when a study mixes protocols."""
  if method == 'base':
    return 'base model'
  label = str(method)
  if with_protocol and protocol:
    label += f' ({PROTOCOL_LABELS.get(protocol, protocol)})'
  return label


def overrides_text(overrides: Any) -> str:
  """The point's dotted overrides as 'a=1, b=2' (the JSON string in the table)."""
  if not overrides:
    return ''
  try:
    parsed = json.loads(overrides) if isinstance(overrides, str) else overrides
  except json.JSONDecodeError:
    return str(overrides)
  if isinstance(parsed, dict):
    return ', '.join(f'{k}={v}' for k, v in parsed.items())
  return str(parsed)
