"""The results table: one row per (point, study, method), its columns, and its files.

A row is built only from a point's files (config.json, result.json or eval.json,
measure.json), so the table can always be rebuilt from `points/`. Each shard
writes `results.shard-<i>-of-<n>.jsonl`; `merge_shards` combines every shard
file present into results.jsonl and results.csv (the contract read by
efficiency.report). Column meanings are in COLUMN_DOCS.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from typing import Any, Iterable

from efficiency import workdir as wd

COLUMN_DOCS: dict[str, str] = {
    'point_id': "12-hex hash of the point's resolved config and protocol",
    'study': "'base', 'resolution', 'params', 'combined' (or a user's study)",
    'method': 'legend label (resize method, width/depth/compound/distill, grid, base)',
    'protocol': "'train', 'evaluate' (base model on these inputs) or 'distill'",
    'overrides': "JSON of the point's dotted overrides",
    'status': "'ok' or 'failed'",
    'error': 'one-line reason when failed',
    'point_workdir': "the point's workdir, relative to the sweep workdir",
    'hardware_id': 'machine id (efficiency.measure.hardware_id)',
    'backend': 'JAX backend (cpu, gpu, tpu)',
    'device_count': 'JAX devices',
    'dataset': 'config.dataset.name',
    'model': 'config.model.name',
    'width': 'config.model.width',
    'depth': 'config.model.depth',
    'resolution': 'effective input side in pixels',
    'resize': 'config.input.resize',
    'antialias': 'config.input.antialias',
    'epochs': 'training epochs of the model (the base model for evaluate points)',
    'seed': 'config.seed',
    'accuracy': 'top-1 on the test split',
    'test_loss': 'mean cross-entropy on the test split',
    'params': 'trainable parameters',
    'params_other': 'non-trainable state (BatchNorm statistics)',
    'params_bytes': 'bytes of the trainable parameters',
    'flops_xla': "XLA's cost_analysis FLOPs of the compiled forward pass at batch 1",
    'flops_jaxpr': 'jaxpr-walk FLOPs at batch 1, every convolution tap counted (padding included)',
    'macs': 'jaxpr-walk multiply-adds at batch 1 (padding included)',
    'flops_ratio': "flops_xla / jaxpr FLOPs counted like XLA (padding taps excluded)",
    'flops_xla_note': "why XLA's count is missing or partial, else empty",
    'bytes_per_example': 'memory traffic per example at batch 1 (see bytes_source)',
    'bytes_source': "'xla_lowered' (unfused XLA program) or 'jaxpr'",
    'arithmetic_intensity': 'FLOPs / byte at batch 1',
    'latency_median_s': 'median of the timed calls at batch 1 (likewise mean, std, ...)',
    'latency_first_call_s': 'the first call after compilation, not among the timed calls',
    'compile_s': 'first compile time of the batch-1 forward pass (XLA cost analysis)',
    'throughput_batch': 'batch of the throughput measurement',
    'throughput_per_s': 'examples per second at throughput_batch',
    'achieved_flops_per_s': '(flops_xla, else flops_jaxpr) x throughput_per_s',
    'train_seconds': 'wall time of the training epochs (None for evaluate points)',
    'measure_seconds': 'wall time of the measurement',
}
LATENCY_FIELDS = ('median', 'mean', 'std', 'min', 'max', 'q1', 'q3', 'iqr', 'p10', 'p90', 'p99',
                  'outliers', 'n')
COLUMNS: tuple[str, ...] = (
    'point_id', 'study', 'method', 'protocol', 'overrides', 'status', 'error', 'point_workdir',
    'hardware_id', 'backend', 'device_count',
    'dataset', 'model', 'width', 'depth', 'resolution', 'resize', 'antialias', 'epochs', 'seed',
    'accuracy', 'test_loss', 'params', 'params_other', 'params_bytes',
    'flops_xla', 'flops_jaxpr', 'macs', 'flops_ratio', 'flops_xla_note', 'bytes_per_example',
    'bytes_source', 'arithmetic_intensity',
    *(f'latency_{name}' + ('' if name in ('outliers', 'n') else '_s') for name in LATENCY_FIELDS),
    'latency_first_call_s', 'compile_s',
    'throughput_batch', 'throughput_per_s', 'achieved_flops_per_s',
    'train_seconds', 'measure_seconds',
)


def row_key(row: dict) -> tuple[str, str, str]:
  return (row['point_id'], row['study'], row['method'])


def _get(record: Any, *path: str) -> Any:
  for key in path:
    if not isinstance(record, dict):
      return None
    record = record.get(key)
  return record


def identity_columns(point, study: str, method: str, point_workdir: str) -> dict[str, Any]:
  """The columns known before any work: who the point is and its config."""
  config = point.config
  return dict(
      point_id=point.point_id, study=study, method=method, protocol=point.protocol,
      overrides=json.dumps(point.overrides, sort_keys=False, default=str), status='ok', error='',
      point_workdir=point_workdir, dataset=config.dataset.name, model=config.model.name,
      width=config.model.width, depth=config.model.depth, resolution=config.input.resolution,
      resize=config.input.resize, antialias=config.input.antialias, epochs=config.train.epochs,
      seed=config.seed)


def failed_row(point, study: str, method: str, point_workdir: str, reason: str) -> dict[str, Any]:
  row = dict.fromkeys(COLUMNS)
  row.update(identity_columns(point, study, method, point_workdir), status='failed',
             error=reason)
  return row


def _xla_note(record: dict) -> str:
  """'' when XLA counted the FLOPs; else why not (its error or its notes)."""
  at_1 = _get(record, 'costs', '1') or {}
  if record.get('flops_xla') is not None and _get(at_1, 'xla', 'status') in (None, 'ok'):
    return ''
  reasons = [record.get('xla_error') or at_1.get('xla_error')]
  reasons += _get(at_1, 'xla', 'notes') or []
  return ' '.join(r for r in reasons if r) or 'XLA gave no FLOP count.'


def _compile_seconds(record: dict) -> float | None:
  """The first compilation of the batch-1 forward pass (XLA's cost analysis compiles it first;
  the latency timer's own compile may then come from JAX's cache)."""
  first = _get(record, 'costs', '1', 'xla', 'compile_s')
  return first if first is not None else _get(record, 'latency', 'compile_s')


def measured_columns(record: dict) -> dict[str, Any]:
  """The size, compute, latency and throughput columns from a measure_model record."""
  at_1 = _get(record, 'costs', '1') or {}
  latency = record.get('latency') or {}
  source = record.get('bytes_source')
  bytes_key = {'xla_lowered': 'bytes_xla_lowered_per_example', 'jaxpr': 'bytes_jaxpr_per_example'}
  flops_for_rate = record.get('flops_xla')
  if flops_for_rate is None:
    flops_for_rate = record.get('flops')
  throughput = record.get('throughput')
  row = dict(
      hardware_id=record.get('hardware_id'), backend=_get(record, 'hardware', 'backend'),
      device_count=record.get('device_count'),
      params=_get(record, 'params', 'trainable'),
      params_other=_get(record, 'params', 'non_trainable'),
      params_bytes=_get(record, 'params', 'trainable_bytes'),
      flops_xla=record.get('flops_xla'), flops_jaxpr=record.get('flops'), macs=record.get('macs'),
      flops_ratio=record.get('xla_over_jaxpr'), flops_xla_note=_xla_note(record),
      bytes_per_example=at_1.get(bytes_key.get(source, '')), bytes_source=source,
      arithmetic_intensity=record.get('arithmetic_intensity'),
      latency_first_call_s=latency.get('first_call_s'), compile_s=_compile_seconds(record),
      throughput_batch=record.get('throughput_batch'), throughput_per_s=throughput,
      achieved_flops_per_s=(None if flops_for_rate is None or throughput is None
                            else flops_for_rate * throughput))
  for name in LATENCY_FIELDS:
    row[f'latency_{name}' + ('' if name in ('outliers', 'n') else '_s')] = latency.get(name)
  return row


def ok_row(point, study: str, method: str, point_workdir: str, *, test: dict, resolution: int,
           record: dict, train_seconds: float | None, measure_seconds: float) -> dict[str, Any]:
  """A finished point's row: `test` is the eval.json metrics, `record` its measure.json."""
  row = dict.fromkeys(COLUMNS)
  row.update(identity_columns(point, study, method, point_workdir))
  row.update(measured_columns(record))
  row.update(accuracy=test.get('accuracy'), test_loss=test.get('loss'), resolution=resolution,
             train_seconds=train_seconds, measure_seconds=measure_seconds)
  return row


def shard_path(workdir: str, shard_index: int, shard_count: int) -> str:
  return os.path.join(workdir, f'results.shard-{shard_index}-of-{shard_count}.jsonl')


def _csv_text(rows: Iterable[dict]) -> str:
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction='ignore', lineterminator='\n')
  writer.writeheader()
  for row in rows:
    writer.writerow({k: '' if row.get(k) is None else row.get(k) for k in COLUMNS})
  return out.getvalue()


def write_table(workdir: str, rows: list[dict]) -> None:
  """results.jsonl and results.csv, the same rows in the same order (each written atomically)."""
  rows = [{k: row.get(k) for k in COLUMNS} for row in rows]
  wd.write_jsonl(os.path.join(workdir, 'results.jsonl'), rows)
  wd.atomic_write_text(os.path.join(workdir, 'results.csv'), _csv_text(rows))


def read_table(workdir: str) -> list[dict]:
  return wd.read_jsonl(os.path.join(workdir, 'results.jsonl'))


def merge_shards(workdir: str, order: list[tuple[str, str, str]] | None = None) -> list[dict]:
  """Every shard file's rows, one per key (the most recently written shard file wins), in
  `order` (keys not in `order` are dropped: points no longer in the sweep), written as the table.

  Call under the merge lock."""
  paths = sorted(glob.glob(os.path.join(workdir, 'results.shard-*-of-*.jsonl')),
                 key=os.path.getmtime)
  by_key: dict[tuple[str, str, str], dict] = {}
  for path in paths:
    for row in wd.read_jsonl(path):
      by_key[row_key(row)] = row
  keys = order if order is not None else list(by_key)
  rows = [by_key[key] for key in keys if key in by_key]
  write_table(workdir, rows)
  return rows
