"""The optimizer: one flat vector taking the per-array form's steps (`flat=False`), and its schedule."""

import logging

import jax
import jax.numpy as jnp
import ml_collections
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


@pytest.mark.parametrize('warmup_epochs', [0.0, 0.5])
def test_cosine_schedule_matches_optax_warmup_cosine_and_logs_nothing(warmup_epochs, caplog):
  train_cfg = ml_collections.ConfigDict(dict(epochs=3, warmup_epochs=warmup_epochs,
                                             learning_rate=0.1, schedule='cosine'))
  with caplog.at_level(logging.INFO):
    schedule = optim.learning_rate_schedule(train_cfg, steps_per_epoch=10)
  warmup = int(round(warmup_epochs * 10))
  reference = optax.warmup_cosine_decay_schedule(0.0, 0.1, warmup, 30, end_value=0.0)
  for step in range(31):
    assert float(schedule(step)) == pytest.approx(float(reference(step)), abs=1e-7)
  assert not [r for r in caplog.records if 'transition_steps' in r.getMessage()]
