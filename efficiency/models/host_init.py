"""Weight initializers that draw on the host with numpy, seeded from the JAX key.

On XLA:CPU every new parameter shape makes `jax.random.truncated_normal`
compile a fresh program (~0.5 s each, erf_inv inside), so building a model of
new shapes cost seconds before training started; a sweep builds dozens. These
initializers give the same distributions (He / LeCun truncated normal, as
`jax.nn.initializers.variance_scaling`) with no compilation, deterministic for
the key they are given.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

# std of a standard normal truncated to [-2, 2]; dividing by it keeps the variance.
_TRUNCATED_STD = 0.87962566103423978


def _rng(key: jax.Array) -> np.random.Generator:
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return np.random.default_rng(np.asarray(key, dtype=np.uint32).ravel().tolist())


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
  out = rng.standard_normal(shape)
  bad = np.abs(out) > 2
  while bad.any():  # resample the tails: each round keeps ~95%
    out[bad] = rng.standard_normal(int(bad.sum()))
    bad = np.abs(out) > 2
  return out


def variance_scaling(scale: float):
  """Truncated normal with variance `scale / fan_in` (fan_in = all but the last axis)."""

  traced_init = jax.nn.initializers.variance_scaling(scale, 'fan_in', 'truncated_normal')

  def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    if isinstance(key, jax.core.Tracer):  # under jit / eval_shape: no host values; same distribution
      return traced_init(key, shape, dtype)
    shape = tuple(int(s) for s in shape)
    fan_in = math.prod(shape[:-1]) if len(shape) > 1 else shape[0]
    std = math.sqrt(scale / max(1, fan_in)) / _TRUNCATED_STD
    return jnp.asarray(_truncated_normal(_rng(key), shape) * std, dtype=dtype)

  return init


he_normal = variance_scaling(2.0)     # ReLU layers (He et al. 2015)
lecun_normal = variance_scaling(1.0)  # layers not followed by a ReLU
