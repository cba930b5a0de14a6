"""A readable text summary of a `measure_model` / `measure_function` record."""

from __future__ import annotations

from typing import Any

_UNITS = ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'k'))


def human(value: Any, unit: str = '') -> str:
  """1.23 G for 1.23e9; 'n/a' for None."""
  if value is None:
    return 'n/a'
  for scale, prefix in _UNITS:
    if abs(value) >= scale:
      return f'{value / scale:.3g} {prefix}{unit}'
  return f'{value:.4g} {unit}'.rstrip()


def seconds(value: Any) -> str:
  """A duration with a readable unit (s, ms, us)."""
  if value is None:
    return 'n/a'
  if value >= 1:
    return f'{value:.3f} s'
  if value >= 1e-3:
    return f'{value * 1e3:.3f} ms'
  return f'{value * 1e6:.1f} us'


def _errors(record: dict[str, Any], where: str = '') -> list[str]:
  lines = [f'  {where}{key[:-len("_error")]}: FAILED - {value}'
           for key, value in record.items() if key.endswith('_error')]
  for batch, cost in (record.get('costs') or {}).items():
    if isinstance(cost, dict) and not where and batch != '1':
      lines.extend(_errors(cost, where=f'batch {batch} '))
  return lines


def _per_layer_table(rows: list[dict[str, Any]], total_flops: int, label: str) -> list[str]:
  lines = [f"  {label:<32} {'type':<14} {'params':>10} {'FLOPs':>10} {'MACs':>10} {'share':>7}"]
  for row in rows:
    share = row['flops'] / total_flops if total_flops else 0.0
    lines.append(f"  {row['name'][:32]:<32} {str(row.get('type') or '')[:14]:<14} "
                 f"{human(row.get('params')):>10} {human(row['flops']):>10} "
                 f"{human(row['macs']):>10} {share:>6.1%}")
  return lines


def _timing_lines(title: str, timed: dict[str, Any] | None) -> list[str]:
  if timed is None:
    return [f'{title}: n/a']
  ci = ('n/a' if timed.get('median_ci95_low') is None else
        f"[{seconds(timed['median_ci95_low'])}, {seconds(timed['median_ci95_high'])}]")
  return [
      f"{title}: median {seconds(timed['median'])} (95% CI {ci}), mean {seconds(timed['mean'])} "
      f"+- {seconds(timed['std'])}",
      f"  p10 {seconds(timed['p10'])}  p90 {seconds(timed['p90'])}  p99 {seconds(timed['p99'])}  "
      f"min {seconds(timed['min'])}  max {seconds(timed['max'])}  IQR {seconds(timed['iqr'])}  "
      f"outliers {timed['outliers']}/{timed['n']}",
      f"  n={timed['n']} stopped by {timed['stopped_by']}; first call "
      f"{seconds(timed.get('first_call_s'))}, host-to-device copy {seconds(timed.get('h2d_s'))}",
  ]


def _data_parallel_lines(dp: dict[str, Any] | None) -> list[str]:
  if not dp:
    return []
  return [
      f"Data parallel on {dp['device_count']} devices, batch {dp['batch_size']} "
      f"({dp['per_device_batch']} per device): {dp['view']}",
      f"  FLOPs per batch: XLA {human(dp['flops_xla_per_device'])} per device = "
      f"{human(dp['flops_xla_program'])} whole program; jaxpr {human(dp['flops_jaxpr_program'])} "
      f"whole program ({human(dp['flops_jaxpr_program_excluding_padding'])} without padding taps, "
      f"as XLA counts) = {human(dp['flops_jaxpr_per_device'])} per device",
      f"  batch latency median {seconds(dp['latency'].get('median'))}, throughput "
      f"{human(dp['throughput_per_s'])} examples/s on {dp['device_count']} devices",
  ]


def format_summary(record: dict[str, Any]) -> str:
  """Params, FLOPs (XLA, jaxpr, MACs, ratio), per-layer table, latency, throughput, hardware."""
  lines = []
  title = record.get('model_type') or record.get('function') or 'measurement'
  shape = record.get('input_shape')
  lines.append(f"== {title}" + (f" on inputs {tuple(shape)} ({record.get('dtype')})" if shape else ''))
  lines.append(f"Convention: {record.get('convention')}")
  p = record.get('params')
  if p:
    lines.append(f"Params: {p['trainable']:,} trainable ({human(p['trainable_bytes'], 'B')}), "
                 f"{p['non_trainable']:,} other state {p['non_trainable_by_type']}")
  per = 'per example' if record.get('kind') == 'model' else 'per call'
  lines.append(f"FLOPs {per}: {human(record.get('flops'))} (jaxpr, padding taps counted), "
               f"{human(record.get('flops_excluding_padding'))} (jaxpr, padding excluded), "
               f"MACs {human(record.get('macs'))}")
  ratio = record.get('xla_over_jaxpr')
  lines.append(f"  XLA compiled {human(record.get('flops_xla'))}, "
               f"XLA/jaxpr = {'n/a' if ratio is None else f'{ratio:.4f}'}; arithmetic intensity "
               f"{human(record.get('arithmetic_intensity'))} FLOP/byte (bytes: {record.get('bytes_source')})")
  for batch, cost in (record.get('costs') or {}).items():
    if isinstance(cost, dict) and 'batch' in cost and cost['batch'] != 1:
      lines.append(f"  at batch {batch}: {human(cost['flops_per_example'])} FLOPs/example "
                   f"(jaxpr), {human(cost['flops_xla_per_example'])} (XLA)")
    xla = cost.get('xla') if isinstance(cost, dict) else None
    for note in (xla or {}).get('notes', []):
      lines.append(f'  note (batch {batch}): {note}')
  xla = record.get('xla') or (record.get('costs') or {}).get('1', {}).get('xla')
  if xla:
    lines.append(f"Compile (XLA, first): lower {seconds(xla.get('lower_s'))}, "
                 f"compile {seconds(xla.get('compile_s'))}")
  rows = record.get('per_layer')
  if rows:
    is_model = record.get('kind') == 'model'
    lines.append('Per layer (batch 1):' if is_model else 'Per scope:')
    lines.extend(_per_layer_table(rows, record.get('flops') or 0, 'module' if is_model else 'scope'))
  lines.extend(_timing_lines('Latency (batch 1)' if record.get('kind') == 'model' else 'Latency',
                             record.get('latency')))
  if record.get('kind') == 'model':
    lines.extend(_timing_lines(f"Batch {record.get('throughput_batch')}",
                               record.get('throughput_timing')))
  lines.append(f"Throughput: {human(record.get('throughput'))} examples/s")
  lines.extend(_data_parallel_lines(record.get('data_parallel')))
  hw = record.get('hardware')
  if hw:
    lines.append(f"Hardware: {record.get('hardware_id')} - {hw['cpu_model']}, "
                 f"{hw['usable_cores']} usable cores, {human(hw['ram_bytes'], 'B')} RAM, "
                 f"{hw['backend']} backend, {record.get('device_count')} device(s), "
                 f"jax {hw['versions'].get('jax')}, {hw['os']} {hw['os_release']}")
  errors = _errors(record)
  if errors:
    lines.append('Errors:')
    lines.extend(errors)
  return '\n'.join(lines)
