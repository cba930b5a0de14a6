"""Wall-clock latency of a jitted function, timed until its median is known well enough.

Protocol of `time_function(fn, *args, settings=...)`:

1. Compile ahead of time (`jax.jit(fn).lower(*args).compile()`): `compile_s`
   (near 0 when JAX's in-process cache already holds the program, e.g. after
   `xla_cost` compiled it; `xla_cost` reports the first compile).
2. Copy the inputs from host memory to the device once: `h2d_s`. Every timed
   call then reads inputs already on the device.
3. The first call is timed alone (`first_call_s`) and discarded, then
   `warmup_calls` untimed calls (cut short after `max_time_s`: `warmup_done`).
4. Timed calls, each ended by `jax.block_until_ready` on its output. With
   `fixed_calls` > 0 exactly that many; otherwise the loop stops as soon as the
   95% CI half-width of the median is <= `rel_precision` x median after at least
   `min_calls` calls and `min_time_s` seconds ('precision'), or at `max_calls`
   ('max_calls') or `max_time_s` ('max_time'), always after at least 3 calls so
   a spread exists. `stopped_by` says which.

`dispatch` records how the CPU backend ran each call: 'synchronous' (in the
calling thread, what `efficiency.cpu_runtime.configure()` sets up in the
toolkit's entry points) or 'asynchronous' (JAX's default: handed to a thread
pool, which adds a thread hand-off to every batch-1 call); 'device' elsewhere.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np

from efficiency.errors import ConfigError
from efficiency.measure.stats import latency_stats

_MIN_SAMPLES = 3


@dataclasses.dataclass(frozen=True)
class LatencySettings:
  """How long to time; the same fields as the `measure` section of the config."""
  warmup_calls: int = 10
  min_calls: int = 30
  max_calls: int = 2000
  fixed_calls: int = 0
  min_time_s: float = 0.2
  max_time_s: float = 2.0
  rel_precision: float = 0.02

  def __post_init__(self):
    for name in ('warmup_calls', 'fixed_calls'):
      if getattr(self, name) < 0:
        raise ConfigError(f'measure.{name}={getattr(self, name)!r} is not allowed: expected >= 0.')
    if self.min_calls < 1 or self.max_calls < self.min_calls:
      raise ConfigError(f'measure.max_calls={self.max_calls!r} is not allowed: expected '
                        f'>= measure.min_calls={self.min_calls!r} >= 1.')
    if self.min_time_s < 0 or self.max_time_s <= 0 or self.max_time_s < self.min_time_s:
      raise ConfigError(f'measure.max_time_s={self.max_time_s!r} is not allowed: expected > 0 and '
                        f'>= measure.min_time_s={self.min_time_s!r} >= 0.')
    if not 0 < self.rel_precision < 1:
      raise ConfigError(f'measure.rel_precision={self.rel_precision!r} is not allowed: '
                        'expected a number in (0, 1).')


def as_settings(settings: Any = None) -> LatencySettings:
  """LatencySettings from None (defaults), a LatencySettings, or a mapping such as `config.measure`.

  Keys that are not timing fields (batch_size, per_layer) are ignored.
  """
  if settings is None:
    return LatencySettings()
  if isinstance(settings, LatencySettings):
    return settings
  if not isinstance(settings, Mapping) and not hasattr(settings, 'keys'):
    raise ConfigError(f'measure settings={settings!r} is not allowed: expected a LatencySettings, '
                      'a mapping such as config.measure, or None.')
  names = {f.name for f in dataclasses.fields(LatencySettings)}
  return LatencySettings(**{k: settings[k] for k in settings.keys() if k in names})


def _host_copy(tree: Any) -> Any:
  """The same pytree with every array copied to host memory (numpy)."""
  def to_host(leaf):
    if (isinstance(leaf, jax.Array) and not getattr(leaf, 'weak_type', False)
        and not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)):
      return np.asarray(leaf)
    return leaf
  return jax.tree.map(to_host, tree)


def _stop_reason(samples: list[float], elapsed_s: float, s: LatencySettings,
                 check_precision: bool) -> str | None:
  n = len(samples)
  if s.fixed_calls > 0:
    return 'fixed' if n >= s.fixed_calls else None
  if n >= s.max_calls:
    return 'max_calls'
  if n < _MIN_SAMPLES:
    return None
  if elapsed_s >= s.max_time_s:
    return 'max_time'
  if check_precision and n >= s.min_calls and elapsed_s >= s.min_time_s:
    stats = latency_stats(samples)
    half_width = stats['median_ci95_half_width']
    if half_width is not None and half_width <= s.rel_precision * stats['median']:
      return 'precision'
  return None


def dispatch_mode() -> str:
  """'synchronous' or 'asynchronous' on the CPU backend (see the module docstring), else 'device'."""
  if jax.default_backend() != 'cpu':
    return 'device'
  return 'asynchronous' if jax.config.read('jax_cpu_enable_async_dispatch') else 'synchronous'


def time_compiled(compiled: Callable[..., Any], device_args: tuple, settings: Any = None
                  ) -> dict[str, Any]:
  """Steps 3-4 of the protocol for an already compiled function and on-device inputs."""
  s = as_settings(settings)
  start = time.perf_counter()
  jax.block_until_ready(compiled(*device_args))
  first_call_s = time.perf_counter() - start
  warmup_done = 0
  warmup_start = time.perf_counter()
  while warmup_done < s.warmup_calls and time.perf_counter() - warmup_start < s.max_time_s:
    jax.block_until_ready(compiled(*device_args))
    warmup_done += 1

  samples: list[float] = []
  loop_start = time.perf_counter()
  stopped_by = None
  next_check = s.min_calls
  while stopped_by is None:
    start = time.perf_counter()
    jax.block_until_ready(compiled(*device_args))
    samples.append(time.perf_counter() - start)
    # Checking precision sorts the samples; doing it every ~5% of calls keeps that cheap.
    check = len(samples) >= next_check
    if check:
      next_check = len(samples) + max(1, len(samples) // 20)
    stopped_by = _stop_reason(samples, time.perf_counter() - loop_start, s, check)
  record = latency_stats(samples)
  record.update(samples_s=samples, first_call_s=first_call_s, warmup_done=warmup_done,
                stopped_by=stopped_by, dispatch=dispatch_mode(),
                timed_s=time.perf_counter() - loop_start, settings=dataclasses.asdict(s))
  return record


def time_function(fn: Callable[..., Any], *args: Any, settings: Any = None) -> dict[str, Any]:
  """Times `jax.jit(fn)(*args)`; see the module docstring for the protocol.

  Returns latency_stats (seconds) plus samples_s, first_call_s, compile_s,
  h2d_s, stopped_by, timed_s and the settings used.
  """
  s = as_settings(settings)
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - start

  host_args = _host_copy(args)
  start = time.perf_counter()
  device_args = jax.block_until_ready(jax.device_put(host_args))
  h2d_s = time.perf_counter() - start

  record = time_compiled(compiled, tuple(device_args), s)
  record.update(compile_s=compile_s, h2d_s=h2d_s)
  return record
