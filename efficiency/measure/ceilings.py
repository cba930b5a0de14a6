"""The machine's ceilings through XLA: peak float32 matmul FLOP/s and memory bandwidth.

`measure_ceilings(max_seconds=2.0)` measures both on the default JAX device,
once per machine (the sweep runner stores them beside its results, keyed by
`hardware_id`, for the roofline plot):

* peak FLOP/s: a jitted `a @ b` of n x n float32 matrices (n = 1024, then
  2048 if time allows), 2*n^3 FLOPs per call; the best call of the best size.
  XLA's own matmul is the ceiling a model compiled by XLA can reach.
* bandwidth: a jitted sum over a float32 array far larger than the last-level
  cache (reads only, no output buffer, so no page faults), bytes = the array's
  size; the best call. This is the bandwidth of streaming reads from memory.

Both are best-of-N figures (ceilings, not typical speeds): a loaded machine
lowers them. `notes` records the sizes, call counts and anything cut short.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp

from efficiency.measure import hardware

_MATMUL_SIZES = (1024, 2048)
_MIN_STREAM_BYTES = 256 * 2**20
_CACHE_MULTIPLE = 8


def _last_level_cache_bytes(report: dict[str, Any]) -> int | None:
  """Size of the highest cache level in `hardware_report()['cpu_caches']` ('32768K', '32 MiB')."""
  caches = report.get('cpu_caches') or {}
  if not caches:
    return None
  text = caches[max(caches)]
  match = re.match(r'\s*([\d.]+)\s*([KMG]?)', str(text), re.IGNORECASE)
  if not match:
    return None
  scale = {'': 1, 'K': 2**10, 'M': 2**20, 'G': 2**30}[match.group(2).upper()]
  return int(float(match.group(1)) * scale)


def _best_call_s(fn: Callable[..., Any], args: tuple, deadline: float,
                 min_calls: int = 3) -> tuple[float, int]:
  """Fastest of repeated calls (each waited for) until `deadline`, at least `min_calls`."""
  best, calls = float('inf'), 0
  while calls < min_calls or time.perf_counter() < deadline:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - start)
    calls += 1
  return best, calls


def _peak_flops(deadline: float, notes: list[str]) -> tuple[float, int]:
  matmul = jax.jit(lambda a, b: a @ b)
  best_rate, best_size = 0.0, _MATMUL_SIZES[0]
  for index, size in enumerate(_MATMUL_SIZES):
    now = time.perf_counter()
    if index > 0 and now > deadline:
      notes.append(f'matmul n={size} skipped: time budget spent.')
      continue
    size_deadline = now + (deadline - now) / (len(_MATMUL_SIZES) - index)
    a = jnp.full((size, size), 0.5, jnp.float32)  # matmul speed does not depend on the values
    b = jnp.full((size, size), 0.25, jnp.float32)
    compiled = matmul.lower(a, b).compile()
    jax.block_until_ready(compiled(a, b))
    seconds, calls = _best_call_s(compiled, (a, b), size_deadline)
    rate = 2.0 * size**3 / seconds
    notes.append(f'matmul n={size}: best of {calls} calls {seconds * 1e3:.2f} ms, '
                 f'{rate / 1e9:.1f} GFLOP/s.')
    if rate > best_rate:
      best_rate, best_size = rate, size
  return best_rate, best_size


def _bandwidth(deadline: float, stream_bytes: int, notes: list[str]) -> float:
  x = jnp.ones((stream_bytes // 4,), jnp.float32)
  compiled = jax.jit(jnp.sum).lower(x).compile()
  jax.block_until_ready(compiled(x))
  seconds, calls = _best_call_s(compiled, (x,), deadline)
  rate = stream_bytes / seconds
  notes.append(f'sum over {stream_bytes / 2**20:.0f} MiB: best of {calls} calls '
               f'{seconds * 1e3:.2f} ms, {rate / 1e9:.1f} GB/s.')
  return rate


def measure_ceilings(max_seconds: float = 2.0) -> dict[str, Any]:
  """{peak_flops_per_s, bandwidth_bytes_per_s, matmul_size, stream_bytes, hardware_id, seconds, notes}.

  Takes about `max_seconds` (compilation included; each measurement makes at
  least 3 calls even past the budget). Raises only if JAX itself fails.
  """
  start = time.perf_counter()
  report = hardware.hardware_report()
  cache = _last_level_cache_bytes(report)
  stream_bytes = max(_MIN_STREAM_BYTES, _CACHE_MULTIPLE * cache) if cache else _MIN_STREAM_BYTES
  notes: list[str] = []
  if cache is None:
    notes.append('last-level cache size unknown: streamed a fixed '
                 f'{_MIN_STREAM_BYTES / 2**20:.0f} MiB.')
  peak, size = _peak_flops(start + 0.6 * max_seconds, notes)
  bandwidth = _bandwidth(start + max_seconds, stream_bytes, notes)
  return {
      'peak_flops_per_s': float(peak), 'bandwidth_bytes_per_s': float(bandwidth),
      'matmul_size': int(size), 'stream_bytes': int(stream_bytes),
      'ridge_point_flops_per_byte': float(peak / bandwidth) if bandwidth else None,
      'hardware_id': hardware.hardware_id(report), 'device': str(jax.devices()[0]),
      'seconds': time.perf_counter() - start, 'notes': notes,
      'method': 'best call of a jitted float32 n x n matmul (2n^3 FLOPs) and of a jitted sum '
                'over an array >> last-level cache (bytes read)',
  }
