"""FLOPs and latency of a model run data-parallel over several devices.

The batch is split over a one-axis mesh of `devices`; the parameters are
replicated. XLA compiles one SPMD program that every device runs on its own
slice, so the compiled `cost_analysis()` counts the work of ONE device. The
jaxpr walk sees the global shapes, so it counts the WHOLE program. Both are
reported, each also converted to the other view (x or / device count), and
latency and throughput name the device count they were measured with.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from efficiency.measure.jaxpr_flops import jaxpr_cost
from efficiency.measure.latency import as_settings, time_compiled
from efficiency.measure.xla_analysis import normalize_cost_analysis

XLA_VIEW = ('XLA cost_analysis() of an SPMD program counts one device\'s share; '
            'the jaxpr count uses global shapes, i.e. the whole program.')


def measure_data_parallel(model: nnx.Module, input_shape: Sequence[int], *, batch_size: int,
                          settings: Any = None, devices: Sequence[jax.Device] | None = None,
                          dtype=jnp.float32) -> dict[str, Any]:
  """Per-device and whole-program FLOPs, and batch latency/throughput on `devices` (default: all)."""
  devices = list(devices or jax.devices())
  count = len(devices)
  if batch_size % count:
    raise ValueError(f'batch_size={batch_size} must divide by the device count ({count}).')
  mesh = jax.make_mesh((count,), ('data',), axis_types=(AxisType.Auto,), devices=devices)
  model.eval()
  graphdef, state = nnx.split(model)
  state = jax.device_put(state, NamedSharding(mesh, PartitionSpec()))
  x = jax.device_put(jnp.zeros((batch_size, *input_shape), dtype),
                     NamedSharding(mesh, PartitionSpec('data')))

  def forward(state, x):
    return nnx.merge(graphdef, state)(x)

  start = time.perf_counter()
  compiled = jax.jit(forward).lower(state, x).compile()
  compile_s = time.perf_counter() - start
  xla = normalize_cost_analysis(compiled.cost_analysis(), 'compiled cost_analysis')
  counted = jaxpr_cost(forward, state, x, per_layer=False)
  timing = time_compiled(compiled, (state, x), as_settings(settings))

  per_device = xla.get('flops')
  program = counted['flops']
  median = timing.get('median')
  return dict(
      device_count=count, batch_size=batch_size, per_device_batch=batch_size // count,
      view=XLA_VIEW, compile_s=compile_s,
      flops_xla_per_device=per_device,
      flops_xla_program=None if per_device is None else per_device * count,
      flops_xla_status=xla.get('status'), flops_xla_notes=xla.get('notes'),
      flops_jaxpr_program=program, flops_jaxpr_per_device=program / count,
      flops_jaxpr_program_excluding_padding=counted['flops_excluding_padding'],
      macs_jaxpr_program=counted['macs'],
      latency=timing,
      throughput_per_s=None if not median else batch_size / median,
  )
