"""fusion_fence returns its input bit for bit, with the identity gradient, and XLA keeps it.

Also: ConvBNReLU(fence_in_training=True) computes the same values, gradients and
running statistics as without it, and the fence costs no FLOPs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from efficiency.measure import jaxpr_cost
from efficiency.models import layers
from efficiency.models.fusion_fence import fusion_fence


@pytest.mark.parametrize('first', [1.5, -0.0, np.inf, -np.inf, np.nan])
def test_values_are_unchanged_bit_for_bit_whichever_branch_runs(first):
  x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
  x[0, 0, 0] = first
  x[1, 2, 3] = np.nan
  out = np.asarray(jax.jit(fusion_fence)(jnp.asarray(x)))
  assert out.dtype == x.dtype and out.shape == x.shape
  np.testing.assert_array_equal(out.view(np.uint32), x.view(np.uint32))


def test_empty_and_integer_arrays_pass_through():
  assert fusion_fence(jnp.zeros((0, 3))).shape == (0, 3)
  np.testing.assert_array_equal(fusion_fence(jnp.arange(6)), np.arange(6))


def test_gradient_is_the_identity():
  x = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)
  grad = jax.grad(lambda v: jnp.sum(jnp.sin(fusion_fence(v * 2.0))))(x)
  np.testing.assert_allclose(grad, 2.0 * jnp.cos(2.0 * x), rtol=1e-6)


def test_xla_keeps_the_conditional_and_it_costs_no_flops():
  x = jnp.ones((8, 6, 6, 4))
  fenced = jax.jit(lambda v: fusion_fence(jnp.maximum(v * 3.0, 0.0)).transpose(3, 1, 2, 0))
  assert 'conditional' in fenced.lower(x).compile().as_text()
  plain = lambda v: jnp.maximum(v * 3.0, 0.0)
  # The predicate (a comparison, then its conversion to a branch index); nothing per element.
  for size in (x, jnp.ones((64, 16, 16, 8))):
    extra = jaxpr_cost(lambda v: fusion_fence(plain(v)), size)['flops'] - jaxpr_cost(plain, size)['flops']
    assert extra == 2


def _loss_and_grads(layer, x):
  def loss(module):
    out = module(x)
    return jnp.sum(out * jnp.cos(out))
  return nnx.value_and_grad(loss)(layer)


def test_conv_bn_relu_with_the_fence_computes_the_same():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 9, 9, 3)), jnp.float32)
  plain = layers.ConvBNReLU(3, 6, 3, 2, closed_form_gradient=True, rngs=nnx.Rngs(0))
  fenced = layers.ConvBNReLU(3, 6, 3, 2, closed_form_gradient=True, fence_in_training=True,
                             rngs=nnx.Rngs(0))
  value, grads = _loss_and_grads(plain, x)
  fenced_value, fenced_grads = _loss_and_grads(fenced, x)
  np.testing.assert_allclose(fenced_value, value, rtol=1e-6)
  for got, want in zip(jax.tree.leaves(fenced_grads), jax.tree.leaves(grads)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(fenced(x), plain(x))     # running averages updated alike
  np.testing.assert_array_equal(fenced.norm.mean[...], plain.norm.mean[...])
  for layer in (plain, fenced):
    layer.eval()
  np.testing.assert_array_equal(fenced(x), plain(x))

  def has_fence(layer, mode):
    getattr(layer, mode)()
    graphdef, state = nnx.split(layer)
    return ' cond[' in str(jax.make_jaxpr(lambda s: nnx.merge(graphdef, s)(x))(state))
  assert has_fence(fenced, 'train') and not has_fence(fenced, 'eval')
  assert not has_fence(plain, 'train')


def test_resnet_blocks_fence_their_output_in_training_only(monkeypatch):
  from efficiency.models import fusion_fence as fence_lib, registry
  make = lambda: registry.create_model(dict(name='resnet', width=4, depth=1, stages=2),
                                       num_classes=3, in_channels=1, rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 8, 8, 1)), jnp.float32)
  fenced = make()
  fenced_value, fenced_grads = _loss_and_grads(fenced, x)
  graphdef, state = nnx.split(fenced)
  jaxpr = lambda: str(jax.make_jaxpr(lambda s: nnx.merge(graphdef, s)(x))(state))
  assert jaxpr().count(' cond[') == 3    # the stem and both blocks
  fenced.eval()
  graphdef, state = nnx.split(fenced)
  assert ' cond[' not in jaxpr()
  monkeypatch.setattr(fence_lib, 'fusion_fence', lambda value: value)
  value, grads = _loss_and_grads(make(), x)
  np.testing.assert_allclose(fenced_value, value, rtol=1e-6)
  for got, want in zip(jax.tree.leaves(fenced_grads), jax.tree.leaves(grads)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 1e-3
