"""The optimizer: one flat vector taking the per-array form's steps (`flat=False`), and its schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from efficiency.config import defaults
from efficiency.training import optim


def _tree(seed):
  rng = np.random.default_rng(seed)
  return {'conv': {'kernel': jnp.asarray(rng.normal(size=(3, 3, 1, 4)), jnp.float32)},
          'norm': {'scale': jnp.asarray(rng.normal(size=(4,)), jnp.float32)},
          'head': jnp.asarray(rng.normal(size=(4, 10)), jnp.float32)}


@pytest.mark.parametrize('name', ['adamw', 'sgd'])
def test_flat_optimizer_takes_the_per_array_steps(name):
  train_cfg = defaults().train
  train_cfg.optimizer = name
  flat = optim.make_optimizer(train_cfg, steps_per_epoch=5)
  reference = optim.make_optimizer(train_cfg, steps_per_epoch=5, flat=False)
  params = ref_params = _tree(0)
  state, ref_state = flat.init(params), reference.init(ref_params)
  assert len(jax.tree.leaves(state)) < len(jax.tree.leaves(ref_state))   # flat vectors
  for step in range(4):
    grads = _tree(step + 1)
    updates, state = flat.update(grads, state, params)
    ref_updates, ref_state = reference.update(grads, ref_state, ref_params)
    params = optax.apply_updates(params, updates)
    ref_params = optax.apply_updates(ref_params, ref_updates)
  assert jax.tree.structure(params) == jax.tree.structure(ref_params)
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  assert not np.allclose(params['head'], _tree(0)['head'])   # the steps moved the parameters
