"""Parameter counts of a known small NNX model against a count by hand."""

import jax.numpy as jnp
from flax import nnx

from efficiency.measure import count_params


class ConvBNLinear(nnx.Module):
  """Conv 3->8 (3x3), BatchNorm(8), Dropout, Linear 8->5."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
    self.bn = nnx.BatchNorm(8, rngs=rngs)
    self.linear = nnx.Linear(8, 5, rngs=rngs)

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return self.linear(self.bn(self.conv(x)).mean(axis=(1, 2)))


def test_count_matches_hand_count_and_separates_batch_stats():
  model = ConvBNLinear(rngs=nnx.Rngs(0))
  conv = 3 * 3 * 3 * 8 + 8
  bn_params = 8 + 8          # scale, bias
  bn_stats = 8 + 8           # running mean, running var
  linear = 8 * 5 + 5
  counts = count_params(model)
  assert counts['trainable'] == conv + bn_params + linear
  assert counts['non_trainable'] == bn_stats
  assert counts['non_trainable_by_type'] == {'BatchStat': bn_stats}
  assert counts['total'] == conv + bn_params + linear + bn_stats
  assert counts['trainable_bytes'] == 4 * (conv + bn_params + linear)
  assert counts['trainable_bytes_by_dtype'] == {'float32': 4 * (conv + bn_params + linear)}
  assert counts['non_trainable_bytes'] == 4 * bn_stats


def test_state_and_module_give_the_same_counts():
  model = ConvBNLinear(rngs=nnx.Rngs(1))
  assert count_params(nnx.state(model)) == count_params(model)
  _, params_only = nnx.split(model, nnx.Param, ...)[0:2]
  assert count_params(params_only)['non_trainable'] == 0


def test_bytes_by_dtype_and_rng_state():
  model = nnx.Linear(4, 3, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  counts = count_params(model)
  assert counts['trainable'] == 4 * 3 + 3
  assert counts['trainable_bytes_by_dtype'] == {'bfloat16': 2 * 15}
  dropout = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
  rng_counts = count_params(dropout)
  assert rng_counts['trainable'] == 0
  assert set(rng_counts['non_trainable_by_type']) == {'RngCount', 'RngKey'}
  assert rng_counts['non_trainable_bytes'] > 0


def test_plain_pytree_counts_as_trainable():
  counts = count_params({'w': jnp.zeros((2, 3)), 'b': jnp.zeros((3,), jnp.float16)})
  assert counts['trainable'] == 9
  assert counts['trainable_bytes_by_dtype'] == {'float16': 6, 'float32': 24}
