"""Host-side initializers: the variance-scaling distribution, truncation and determinism per key."""

import math

import jax
import numpy as np
import pytest

from efficiency.models import host_init


@pytest.mark.parametrize('shape,scale', [((3, 3, 16, 64), 2.0), ((256, 10), 1.0), ((3, 3, 1, 32), 2.0)])
def test_variance_matches_variance_scaling(shape, scale):
  w = np.asarray(host_init.variance_scaling(scale)(jax.random.key(0), shape))
  fan_in = math.prod(shape[:-1])
  assert w.shape == shape and w.dtype == np.float32
  assert np.var(w) == pytest.approx(scale / fan_in, rel=0.1)
  bound = 2 * math.sqrt(scale / fan_in) / host_init._TRUNCATED_STD
  assert np.abs(w).max() <= bound + 1e-6
  assert abs(np.mean(w)) < 3 * math.sqrt(scale / fan_in / w.size) + 1e-6


def test_same_key_same_weights_other_key_other_weights():
  init = host_init.he_normal
  a = np.asarray(init(jax.random.key(1), (4, 5)))
  b = np.asarray(init(jax.random.key(1), (4, 5)))
  c = np.asarray(init(jax.random.key(2), (4, 5)))
  raw = np.asarray(init(jax.random.PRNGKey(1), (4, 5)))  # legacy uint32 keys work too
  assert np.array_equal(a, b)
  assert not np.array_equal(a, c)
  assert raw.shape == (4, 5)
