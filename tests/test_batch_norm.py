"""efficiency.models.batch_norm.BatchNorm computes what nnx.BatchNorm computes: outputs, state, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from efficiency.measure.jaxpr_flops import jaxpr_cost
from efficiency.models import batch_norm, layers


def _pair(features=5):
  ours = batch_norm.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0))
  ref = nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(1)
  for module in (ours, ref):   # the same non-trivial scale and bias in both
    module.scale[...] = jnp.asarray(rng.normal(size=features) + 1.0, jnp.float32)
    module.bias[...] = jnp.asarray(rng.normal(size=features), jnp.float32)
    rng = np.random.default_rng(1)
  return ours, ref


def _loss(graphdef, x, target):
  def loss(state, x):
    module = nnx.merge(graphdef, state)
    y = module(x)
    return jnp.sum(jnp.sin(y) * target), (y, nnx.state(module, nnx.BatchStat))
  return loss


@pytest.mark.parametrize('shape', [(4, 6, 6, 5), (7, 5), (3, 1, 2, 5)])
def test_training_mode_matches_nnx_batch_norm(shape):
  ours, ref = _pair()
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=shape) * 3.0 + 0.5, jnp.float32)
  target = jnp.asarray(rng.normal(size=shape), jnp.float32)
  results = []
  for module in (ours, ref):
    graphdef, state = nnx.split(module)
    grad_fn = jax.value_and_grad(_loss(graphdef, x, target), argnums=(0, 1), has_aux=True)
    (value, (y, stats)), (state_grads, x_grad) = grad_fn(state, x)
    results.append((value, y, stats, nnx.state(state_grads, nnx.Param), x_grad))
  (value, y, stats, param_grads, x_grad), (rvalue, ry, rstats, rparam_grads, rx_grad) = results
  np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(value, rvalue, rtol=1e-5, atol=1e-5)
  for got, want in zip(jax.tree.leaves(stats), jax.tree.leaves(rstats)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)   # running averages
  for got, want in zip(jax.tree.leaves(param_grads), jax.tree.leaves(rparam_grads)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)   # d scale, d bias
  np.testing.assert_allclose(x_grad, rx_grad, rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(x_grad).max()) > 1e-3   # a real gradient was compared


def test_evaluation_mode_and_state_are_nnx_batch_norm():
  ours, ref = _pair()
  x = jnp.asarray(np.random.default_rng(3).normal(size=(3, 4, 4, 5)), jnp.float32)
  ours(x), ref(x)            # one training step of the running averages
  ours.eval(), ref.eval()
  np.testing.assert_allclose(ours(x), ref(x), rtol=1e-6, atol=1e-6)
  assert jax.tree.map(jnp.shape, nnx.state(ours)) == jax.tree.map(jnp.shape, nnx.state(ref))
  chosen = layers.batch_norm(5, closed_form_gradient=True, rngs=nnx.Rngs(0))
  assert isinstance(chosen, batch_norm.BatchNorm)
  assert not isinstance(layers.batch_norm(5, rngs=nnx.Rngs(0)), batch_norm.BatchNorm)


def test_evaluation_mode_with_trained_statistics_is_one_multiply_and_one_add():
  ours, ref = _pair()
  rng = np.random.default_rng(4)
  for module in (ours, ref):
    module.mean[...] = jnp.asarray(rng.normal(size=5) * 3.0, jnp.float32)
    module.var[...] = jnp.asarray(rng.uniform(0.05, 4.0, size=5), jnp.float32)
    module.eval()
    rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(6, 3, 3, 5)) * 2.0 + 1.0, jnp.float32)
  np.testing.assert_allclose(ours(x), ref(x), rtol=1e-5, atol=1e-5)
  grad = lambda module: jax.grad(lambda x: jnp.sum(jnp.sin(module(x))))(x)
  np.testing.assert_allclose(grad(ours), grad(ref), rtol=1e-5, atol=1e-5)
  per_element = lambda module: (jaxpr_cost(module, x, per_layer=False)['flops'] -
                                jaxpr_cost(module, x[:1], per_layer=False)['flops']) / x[1:].size
  assert per_element(ours) == 2 and per_element(ref) == 3
