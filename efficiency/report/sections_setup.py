"""Report sections on the set-up: hardware, task and data, the base model and its latency.

Each function returns Markdown text built only from sweep.json, the results table
and the base point's measure.json; a value that is not there shows as a dash.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from efficiency.report import formatting as fmt
from efficiency.report.load import Sweep

CONVENTION = ('FLOPs count 1 multiply-add as 2 FLOPs; MACs count multiply-adds (jaxpr), so a '
              'network of only matrix products and convolutions has FLOPs = 2 × MACs.')
# Hardware report keys shown first, with readable names; other keys follow as they are.
HARDWARE_LABELS = {
    'cpu_model': 'CPU', 'cpu_signature': 'CPU identity',
    'cpu_physical_cores': 'physical cores', 'cpu_logical_cores': 'logical cores',
    'usable_cores': 'cores this process may use', 'cpu_caches': 'caches (per core)',
    'ram_bytes': 'RAM', 'os': 'OS', 'os_release': 'kernel', 'platform': 'platform',
    'machine': 'architecture', 'python': 'Python', 'versions': 'versions', 'backend': 'JAX backend',
    'process_count': 'processes', 'device_count': 'devices (all processes)',
    'local_device_count': 'devices (this process)', 'devices': 'device list',
    'cpu_affinity': 'CPUs this process may run on', 'env': 'thread / XLA environment'}
HYPERPARAMETERS = (
    ('model', 'model.name'), ('width', 'model.width'), ('depth', 'model.depth'),
    ('input resolution', 'input.resolution'), ('downsampling', 'input.resize'),
    ('optimizer', 'train.optimizer'), ('peak learning rate', 'train.learning_rate'),
    ('schedule', 'train.schedule'), ('warm-up epochs', 'train.warmup_epochs'),
    ('epochs', 'train.epochs'), ('batch size', 'train.batch_size'),
    ('weight decay', 'train.weight_decay'), ('momentum (SGD)', 'train.momentum'),
    ('label smoothing', 'train.label_smoothing'), ('seed', 'seed'))


def _hardware_value(key: str, value: Any) -> str:
  if key.endswith('bytes'):
    return fmt.format_bytes(value)
  if key == 'devices' and isinstance(value, list):
    return '; '.join(f"{d.get('platform')}:{d.get('id')} {d.get('kind')}"
                     + (f" ({fmt.format_bytes(d['memory_bytes'])})" if d.get('memory_bytes') else '')
                     for d in value if isinstance(d, dict)) or fmt.MISSING
  if isinstance(value, dict):
    return fmt.format_value({k: v for k, v in value.items() if v is not None})
  return fmt.format_value(value)


def hardware_section(sweep: Sweep) -> str:
  reports = sweep.meta.get('hardware') or {}
  lines = ['## Hardware', '']
  machines = sorted(set(sweep.hardware_ids) | set(reports))
  if not machines:
    return '\n'.join(lines + ['No hardware report in sweep.json.', ''])
  for machine in machines:
    report = reports.get(machine)
    rows = sweep.table[sweep.table['hardware_id'] == machine]
    lines += [f'### `{machine}`', '',
              f'{fmt.plural(len(rows), "point")} measured here, backend '
              f'{", ".join(sorted(set(rows["backend"].dropna()))) or fmt.MISSING}.', '']
    if not isinstance(report, dict):
      lines += ['sweep.json holds no hardware report for this machine.', '']
      continue
    keys = [k for k in HARDWARE_LABELS if k in report] + [k for k in report if k not in HARDWARE_LABELS]
    table = [(HARDWARE_LABELS.get(k, k), _hardware_value(k, report[k])) for k in keys]
    table = [(label, value) for label, value in table if value != fmt.MISSING]
    lines += [fmt.markdown_table(['field', 'value'], table), '']
  return '\n'.join(lines)


def _citation_block(citation: Any) -> list[str]:
  if not citation:
    return []
  text = str(citation).strip()
  fence = '```bibtex' if text.startswith('@') else '```'
  return ['<details><summary>Citation</summary>', '', fence, text, '```',
          '', '</details>', '']


def task_section(sweep: Sweep) -> str:
  data = sweep.meta.get('dataset') or {}
  shape = data.get('image_shape')
  rows = [('dataset', data.get('name')), ('description', data.get('description')),
          ('training examples', fmt.format_number(data.get('train_examples'))),
          ('test examples', fmt.format_number(data.get('test_examples'))),
          ('classes', fmt.format_number(data.get('num_classes'))),
          ('image shape (H×W×C)', '×'.join(map(str, shape)) if shape else None),
          ('reported split', data.get('split')), ('metric', data.get('metric')),
          ('homepage', data.get('homepage'))]
  lines = ['## Task and data', '',
           f'Image classification: each image gets one of '
           f'{fmt.format_number(data.get("num_classes"))} classes; quality is '
           f'{data.get("metric") or fmt.MISSING} on the `{data.get("split") or fmt.MISSING}` split.',
           '', fmt.markdown_table(['field', 'value'], [(k, fmt.format_value(v)) for k, v in rows]), '']
  lines += _citation_block(data.get('citation'))
  families = sweep.meta.get('model_families') or {}
  if families:
    lines += ['### Model families', '']
    for name, info in sorted(families.items()):
      info = info or {}
      head = f'- **{name}** ({info.get("title") or name})'
      if info.get('description'):
        head += f': {info["description"]}'
      if info.get('paper'):
        head += f' Paper: {info["paper"]}'
      lines.append(head)
      lines += ['  ' + line if line else '' for line in _citation_block(info.get('citation'))]
    lines.append('')
  return '\n'.join(lines)


def _config_value(config: dict, dotted: str) -> Any:
  node: Any = config
  for part in dotted.split('.'):
    if not isinstance(node, dict) or part not in node:
      return None
    node = node[part]
  return node


def _hyperparameters(config: dict) -> str:
  rows = [(label, fmt.format_value(_config_value(config, key))) for label, key in HYPERPARAMETERS
          if not (key == 'train.momentum' and _config_value(config, 'train.optimizer') != 'sgd')]
  model = config.get('model') or {}
  rows += [(f'model.{k}', fmt.format_value(v)) for k, v in model.items()
           if k not in ('name', 'width', 'depth')]
  resolution = _config_value(config, 'input.resolution')
  rows = [(label, 'native' if label == 'input resolution' and resolution is None else value)
          for label, value in rows]
  return fmt.markdown_table(['hyperparameter', 'value'], rows)


def _latency_cell(row: pd.Series) -> str:
  return (f'{fmt.format_seconds(row["latency_median_s"])} '
          f'(IQR {fmt.format_seconds(row["latency_q1_s"])} – {fmt.format_seconds(row["latency_q3_s"])})')


def base_metrics(row: pd.Series, split: str) -> list[tuple[str, str]]:
  """(metric, formatted value) of one base-model row, in reading order."""
  slowdown = (row['latency_first_call_s'] / row['latency_median_s']
              if row['latency_median_s'] and row['latency_median_s'] > 0 else None)
  note = f' — {row["flops_xla_note"]}' if row.get('flops_xla_note') else ''
  batch = fmt.format_number(row['throughput_batch'])
  return [
      (f'top-1 accuracy ({split})', fmt.format_percent(row['accuracy'])),
      ('test loss', fmt.format_number(row['test_loss'], 4)),
      ('trainable parameters', fmt.format_count(row['params'])),
      ('non-trainable state', fmt.format_count(row['params_other'])),
      ('parameter bytes', fmt.format_bytes(row['params_bytes'])),
      ('FLOPs per example (XLA)', fmt.format_flops(row['flops_xla']) + note),
      ('FLOPs per example (jaxpr, padding taps included)', fmt.format_flops(row['flops_jaxpr'])),
      ('MACs per example (jaxpr, padding taps included)', fmt.format_count(row['macs'])),
      ('XLA / jaxpr FLOPs (jaxpr counted as XLA does, without padding taps)',
       fmt.format_ratio(row['flops_ratio'])),
      ('bytes per example' + (f' ({row["bytes_source"]})' if row.get('bytes_source') else ''),
       fmt.format_bytes(row['bytes_per_example'])),
      ('arithmetic intensity (FLOPs/byte)', fmt.format_number(row['arithmetic_intensity'])),
      ('latency at batch 1, median (IQR q1 – q3)', _latency_cell(row)),
      ('latency mean ± std', f'{fmt.format_seconds(row["latency_mean_s"])} ± '
                             f'{fmt.format_seconds(row["latency_std_s"])}'),
      ('latency min / p10 / p90 / p99 / max', ' / '.join(fmt.format_seconds(row[f'latency_{q}_s'])
                                                        for q in ('min', 'p10', 'p90', 'p99', 'max'))),
      ('timed calls / outliers (beyond 1.5 IQR)', f'{fmt.format_number(row["latency_n"])} / '
                                                  f'{fmt.format_number(row["latency_outliers"])}'),
      ('first call after compilation', fmt.format_seconds(row['latency_first_call_s'])),
      ('first-iteration slowdown (first call / median)', fmt.format_ratio(slowdown)),
      ('compile time', fmt.format_seconds(row['compile_s'])),
      (f'throughput (batch {batch})', fmt.format_rate(row['throughput_per_s'], 'examples/s')),
      ('achieved FLOP/s (throughput batch)', fmt.format_rate(row['achieved_flops_per_s'], 'FLOP/s')),
      ('training time', fmt.format_seconds(row['train_seconds'])),
      ('measurement time', fmt.format_seconds(row['measure_seconds'])),
  ]


def base_section(sweep: Sweep) -> str:
  split = (sweep.meta.get('dataset') or {}).get('split') or 'test'
  lines = ['## Base model', '']
  config = sweep.meta.get('base_config') or {}
  lines += ['### Hyperparameters', '', _hyperparameters(config) if config
            else 'sweep.json holds no base_config.', '']
  base = sweep.base_rows()
  lines += ['### Results', '']
  failed = sweep.failed[(sweep.failed['point_id'] == sweep.meta.get('base_point'))
                        | (sweep.failed['study'] == 'base')]
  for _, row in failed.iterrows():
    lines += [f'The base model failed on `{row["hardware_id"]}` (point `{row["point_id"]}`): '
              f'{row["error"] or "no reason recorded"}', '']
  if base.empty:
    return '\n'.join(lines + ['The base model has no successful row in the results table.', ''])
  machines = [str(m) for m in base['hardware_id']]
  metrics = [base_metrics(row, split) for _, row in base.iterrows()]
  table = [[name] + [m[i][1] for m in metrics] for i, (name, _) in enumerate(metrics[0])]
  lines += [f'Point `{base["point_id"].iloc[0]}`. {CONVENTION}', '',
            fmt.markdown_table(['metric'] + [f'`{m}`' for m in machines], table,
                               ['l'] + ['r'] * len(machines)), '']
  return '\n'.join(lines)


def latency_section(sweep: Sweep, figures: dict[str, dict[str, str]], missing: list[str],
                    report_dir: str) -> str:
  """The base model's per-call trace and histogram; `missing` lists machines without samples."""
  lines = ['### Latency distribution', '']
  if 'trace' in figures:
    lines += [fmt.figure_block(
        figures['trace'], report_dir, 'per-call latency of the base model',
        'Each timed call at batch 1 in order. The red cross is the first call after compilation '
        '(first_call_s), which is kept out of every statistic; the dashed line is the median of '
        'the timed calls.'), '']
  if 'histogram' in figures:
    lines += [fmt.figure_block(
        figures['histogram'], report_dir, 'histogram of per-call latency',
        'Distribution of the timed calls at batch 1; vertical lines: median, p90 and p99 '
        'from the results table.'), '']
  lines += [f'No raw latency samples for {m}.' for m in missing]
  if not figures and not missing:
    lines.append('No successful base model row, so no latency samples to show.')
  return '\n'.join(lines + [''])
