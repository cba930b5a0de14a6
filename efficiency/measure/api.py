"""One call that measures everything about a model or a function, as one JSON-able record.

`measure_model(model, (H, W, C), settings=config.measure)` puts a copy of the
model in eval mode and records: parameters; FLOPs from XLA (compiled and
lowered) and from the jaxpr walk, MACs and their ratio, at batch 1 and at the
throughput batch (per batch and per example); arithmetic intensity; XLA's
memory analysis; the per-layer table; latency at batch 1 and throughput at the
throughput batch; the hardware. The timed function is
`jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))`, so NNX's Python
overhead is not in the figures.

A measurement that raises is recorded as None beside `<name>_error` (the
reason); the others still run.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from efficiency.measure import hardware, jaxpr_flops, latency, module_costs, params, xla_analysis

CONVENTION = ('1 multiply-add = 2 FLOPs; MACs = multiply-adds. '
              + jaxpr_flops.CONV_CONVENTION + '. Transcendentals (exp, tanh, rsqrt, ...) are '
              'counted apart from FLOPs, as XLA does. Latency in seconds; throughput in examples/s.')


def _attempt(record: dict[str, Any], name: str, thunk: Callable[[], Any]) -> Any:
  """record[name] = thunk(), or None plus record[name + '_error'] if it raises."""
  try:
    record[name] = thunk()
  except Exception as error:  # noqa: BLE001 - recorded with its reason, never dropped
    record[name] = None
    record[f'{name}_error'] = f'{type(error).__name__}: {error}'
  return record[name]


def _ratio(numerator: Any, denominator: Any) -> float | None:
  if numerator is None or denominator in (None, 0):
    return None
  return float(numerator) / float(denominator)


def _cost_at_batch(xla: dict | None, counted: dict | None, batch: int) -> dict[str, Any]:
  """Per-batch and per-example FLOPs from both sources, their ratios and arithmetic intensity."""
  out: dict[str, Any] = {'batch': batch}
  fields = {
      'flops': (counted, 'flops'), 'macs': (counted, 'macs'),
      'flops_excluding_padding': (counted, 'flops_excluding_padding'),
      'macs_excluding_padding': (counted, 'macs_excluding_padding'),
      'transcendentals': (counted, 'transcendentals'), 'bytes_jaxpr': (counted, 'bytes'),
      'flops_xla': (xla, 'flops'), 'flops_xla_lowered': (xla, 'flops_lowered'),
      'transcendentals_xla': (xla, 'transcendentals'),
      'bytes_xla': (xla, 'bytes_accessed'), 'bytes_xla_lowered': (xla, 'bytes_accessed_lowered'),
  }
  for name, (source, key) in fields.items():
    value = None if source is None else source.get(key)
    out[name] = value
    out[f'{name}_per_example'] = None if value is None else value / batch
  reference = None if counted is None else counted['flops_excluding_padding']
  out['xla_over_jaxpr'] = _ratio(out['flops_xla'], reference)
  out['xla_lowered_over_jaxpr'] = _ratio(out['flops_xla_lowered'], reference)
  out['macs_over_flops'] = _ratio(out['macs'], out['flops'])
  if out['bytes_xla_lowered']:
    out['arithmetic_intensity'] = _ratio(out['flops_xla_lowered'], out['bytes_xla_lowered'])
    out['bytes_source'] = 'xla_lowered'
  else:
    out['arithmetic_intensity'] = _ratio(out['flops_excluding_padding'], out['bytes_jaxpr'])
    out['bytes_source'] = 'jaxpr' if out['arithmetic_intensity'] is not None else None
  return out


def _without_rows(counted: dict[str, Any] | None) -> dict[str, Any] | None:
  return None if counted is None else {k: v for k, v in counted.items() if k != 'per_layer'}


def to_jsonable(value: Any) -> Any:
  """Plain Python containers and numbers (numpy scalars and arrays converted)."""
  if isinstance(value, dict):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, (np.ndarray, jax.Array)):
    return np.asarray(value).tolist()
  return value


def _hardware_fields(record: dict[str, Any]) -> None:
  report = _attempt(record, 'hardware', hardware.hardware_report)
  record['hardware_id'] = hardware.hardware_id(report) if report else None
  record['device_count'] = jax.device_count()


def measure_model(model: nnx.Module, input_shape: tuple[int, ...], *, settings: Any = None,
                  throughput_batch: int | None = None, per_layer: bool = True,
                  dtype: Any = jnp.float32) -> dict[str, Any]:
  """Everything about `model` on inputs of shape (batch, *input_shape); see the module docstring.

  `settings` is `config.measure`, a dict or a `LatencySettings` (None = defaults);
  `throughput_batch` defaults to settings['batch_size'] or 64.
  """
  timing = latency.as_settings(settings)
  if throughput_batch is None:
    has_batch = settings is not None and hasattr(settings, 'keys') and 'batch_size' in settings
    throughput_batch = int(settings['batch_size']) if has_batch else 64
  graphdef, state = nnx.split(model)
  eval_model = nnx.merge(graphdef, state)  # a copy: the caller's model keeps its mode
  eval_model.eval()
  graphdef, state = nnx.split(eval_model)

  def forward(state, x):
    return nnx.merge(graphdef, state)(x)

  record: dict[str, Any] = {
      'kind': 'model', 'model_type': type(model).__name__, 'input_shape': list(input_shape),
      'dtype': str(jnp.dtype(dtype)), 'throughput_batch': throughput_batch,
      'convention': CONVENTION,
  }
  _attempt(record, 'params', lambda: params.count_params(eval_model))
  costs: dict[str, Any] = {}
  for batch in sorted({1, throughput_batch}):
    x = jnp.zeros((batch, *input_shape), dtype)
    at: dict[str, Any] = {}
    xla = _attempt(at, 'xla', lambda: xla_analysis.xla_cost(forward, state, x))
    counted = _attempt(at, 'jaxpr', lambda: module_costs.model_jaxpr_cost(
        eval_model, x, per_layer=per_layer and batch == 1))
    at.update(_cost_at_batch(xla, counted, batch))
    if batch == 1:
      record['per_layer'] = None if counted is None else counted['per_layer']
    at['jaxpr'] = _without_rows(counted)
    costs[str(batch)] = at
  record['costs'] = costs
  first = costs['1']
  for name in ('flops', 'macs', 'flops_excluding_padding', 'macs_excluding_padding',
               'flops_xla', 'flops_xla_lowered', 'xla_over_jaxpr', 'xla_lowered_over_jaxpr',
               'arithmetic_intensity', 'bytes_source'):
    record[name] = first[name]
  for key in ('xla_error', 'jaxpr_error'):
    if key in first:
      record[key] = first[key]

  x1 = jnp.zeros((1, *input_shape), dtype)
  timed = _attempt(record, 'latency', lambda: latency.time_function(forward, state, x1,
                                                                    settings=timing))
  record['latency_s'] = None if timed is None else timed['median']
  if throughput_batch == 1:
    record['throughput_timing'] = timed
  else:
    xb = jnp.zeros((throughput_batch, *input_shape), dtype)
    _attempt(record, 'throughput_timing',
             lambda: latency.time_function(forward, state, xb, settings=timing))
  batch_timing = record['throughput_timing']
  record['throughput'] = None if batch_timing is None else throughput_batch / batch_timing['median']
  _hardware_fields(record)
  return to_jsonable(record)


def measure_function(fn: Callable[..., Any], *example_args: Any, settings: Any = None,
                     per_layer: bool = True, examples_per_call: int | None = None
                     ) -> dict[str, Any]:
  """XLA and jaxpr costs, per-scope rows (the function's own `jax.named_scope`s) and latency.

  `examples_per_call`, if given, turns the median latency into `throughput`
  (examples/s) and gives per-example costs.
  """
  timing = latency.as_settings(settings)
  record: dict[str, Any] = {'kind': 'function', 'function': getattr(fn, '__name__', repr(fn)),
                            'convention': CONVENTION, 'examples_per_call': examples_per_call}
  xla = _attempt(record, 'xla', lambda: xla_analysis.xla_cost(fn, *example_args))
  counted = _attempt(record, 'jaxpr',
                     lambda: jaxpr_flops.jaxpr_cost(fn, *example_args, per_layer=per_layer))
  record['costs'] = _cost_at_batch(xla, counted, examples_per_call or 1)
  record['per_layer'] = None if counted is None else counted['per_layer']
  record['jaxpr'] = _without_rows(counted)
  for name in ('flops', 'macs', 'flops_excluding_padding', 'flops_xla', 'xla_over_jaxpr',
               'arithmetic_intensity', 'bytes_source'):
    record[name] = record['costs'][name]
  timed = _attempt(record, 'latency',
                   lambda: latency.time_function(fn, *example_args, settings=timing))
  record['latency_s'] = None if timed is None else timed['median']
  record['throughput'] = (None if timed is None or not examples_per_call
                          else examples_per_call / timed['median'])
  _hardware_fields(record)
  return to_jsonable(record)
