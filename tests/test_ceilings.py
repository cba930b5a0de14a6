"""measure_ceilings: positive, finite ceilings above what naive code reaches, keyed by hardware id."""

import math
import time

import numpy as np

from efficiency.measure import ceilings, hardware_id


def _naive_matmul_flops_per_s(n: int = 24) -> float:
  """FLOP/s of a pure-Python triple-loop matmul: a floor any XLA matmul must beat."""
  a = [[float(i + j) for j in range(n)] for i in range(n)]
  start = time.perf_counter()
  [[sum(a[i][k] * a[k][j] for k in range(n)) for j in range(n)] for i in range(n)]
  return 2 * n**3 / (time.perf_counter() - start)


def test_ceilings_are_positive_finite_and_above_naive_bounds():
  result = ceilings.measure_ceilings(max_seconds=0.5)
  peak, bandwidth = result['peak_flops_per_s'], result['bandwidth_bytes_per_s']
  for value in (peak, bandwidth, result['ridge_point_flops_per_byte']):
    assert isinstance(value, float) and math.isfinite(value) and value > 0
  assert peak > max(1e9, 10 * _naive_matmul_flops_per_s())
  assert bandwidth > 1e8
  assert result['ridge_point_flops_per_byte'] == peak / bandwidth
  assert result['matmul_size'] in (1024, 2048)
  assert result['stream_bytes'] >= 256 * 2**20
  assert result['hardware_id'] == hardware_id()
  assert any('matmul n=1024' in note for note in result['notes'])
  assert result['seconds'] < 30


def test_last_level_cache_parsing():
  parse = ceilings._last_level_cache_bytes
  assert parse({'cpu_caches': {'L1d': '48K', 'L2': '1024K', 'L3': '32768K'}}) == 32 * 2**20
  assert parse({'cpu_caches': {'L2': '2 MiB', 'L3': '32 MiB'}}) == 32 * 2**20
  assert parse({'cpu_caches': {}}) is None
  assert np.isclose(parse({'cpu_caches': {'L2': '0.5M'}}), 2**19)
