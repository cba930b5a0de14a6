"""FLOP counts: XLA and the jaxpr walk against the textbook formulas and each other."""

import math

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax import lax

from efficiency.measure import jaxpr_cost, model_jaxpr_cost, xla_cost


def _conv(x, k, strides, padding, lhs_dilation=(1, 1), rhs_dilation=(1, 1), groups=1):
  return lax.conv_general_dilated(
      x, k, strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=groups)


def _out_size(size, kernel, stride, padding, dilation=1):
  effective = (kernel - 1) * dilation + 1
  return math.ceil(size / stride) if padding == 'SAME' else (size - effective) // stride + 1


def _valid_taps(x_shape, k_shape, **conv_kwargs):
  """Multiply-adds that touch real input: a conv of ones with ones, summed."""
  return int(_conv(jnp.ones(x_shape), jnp.ones(k_shape), **conv_kwargs).sum())


def test_dense_layer_xla_and_jaxpr_equal_two_macs():
  batch, d_in, d_out = 3, 17, 11
  x, w = jnp.ones((batch, d_in)), jnp.ones((d_in, d_out))
  macs = batch * d_in * d_out
  assert xla_cost(jnp.dot, x, w)['flops'] == 2 * macs
  counted = jaxpr_cost(jnp.dot, x, w)
  assert (counted['flops'], counted['macs']) == (2 * macs, macs)
  linear = nnx.Linear(d_in, d_out, rngs=nnx.Rngs(0))
  with_bias = model_jaxpr_cost(linear, x)
  assert with_bias['flops'] == 2 * macs + batch * d_out   # + one add per output for the bias
  graphdef, state = nnx.split(linear)
  assert xla_cost(lambda s, x: nnx.merge(graphdef, s)(x), state, x)['flops'] == with_bias['flops']


def test_valid_conv_xla_equals_two_macs():
  x, k = jnp.ones((2, 12, 10, 3)), jnp.ones((3, 3, 3, 5))
  macs = 2 * _out_size(12, 3, 1, 'VALID') * _out_size(10, 3, 1, 'VALID') * 5 * 3 * 3 * 3
  assert xla_cost(lambda x, k: _conv(x, k, (1, 1), 'VALID'), x, k)['flops'] == 2 * macs
  counted = jaxpr_cost(lambda x, k: _conv(x, k, (1, 1), 'VALID'), x, k)
  assert counted['macs'] == counted['macs_excluding_padding'] == macs


@pytest.mark.parametrize('case', [
    dict(strides=(1, 1), padding='SAME'),
    dict(strides=(2, 2), padding='SAME'),
    dict(strides=(2, 1), padding='VALID'),
    dict(strides=(1, 1), padding='SAME', rhs_dilation=(2, 2)),
    dict(strides=(1, 1), padding='VALID', rhs_dilation=(2, 3)),
    dict(strides=(1, 1), padding=((2, 2), (2, 2)), lhs_dilation=(2, 2)),
    dict(strides=(1, 1), padding='SAME', groups=2),
    dict(strides=(2, 2), padding='SAME', groups=8),   # depthwise
])
def test_jaxpr_conv_count_matches_formula(case):
  groups = case.get('groups', 1)
  n, h, w, c_in, c_out, kh, kw = 2, 11, 9, 8, 8, 3, 3
  x_shape, k_shape = (n, h, w, c_in), (kh, kw, c_in // groups, c_out)
  fn = lambda x, k: _conv(x, k, **case)
  counted = jaxpr_cost(fn, jnp.ones(x_shape), jnp.ones(k_shape))
  out = jax.eval_shape(fn, jnp.ones(x_shape), jnp.ones(k_shape)).shape
  if 'lhs_dilation' not in case and not isinstance(case['padding'], tuple):
    dil = case.get('rhs_dilation', (1, 1))
    assert out[1:3] == (_out_size(h, kh, case['strides'][0], case['padding'], dil[0]),
                        _out_size(w, kw, case['strides'][1], case['padding'], dil[1]))
  dense = math.prod(out) * kh * kw * (c_in // groups)
  assert counted['macs'] == dense
  assert counted['flops'] == 2 * dense
  assert counted['macs_excluding_padding'] == _valid_taps(x_shape, k_shape, **case)
  assert xla_cost(fn, jnp.ones(x_shape), jnp.ones(k_shape))['flops'] == pytest.approx(
      counted['flops_excluding_padding'], rel=1e-6)


def test_elementwise_reduction_and_transcendental_conventions():
  x = jnp.ones((4, 6))
  counted = jaxpr_cost(lambda x: jnp.sum(jnp.tanh(x) * 2.0 + x ** 3, axis=1), x)
  # mul, add: 1 each per element; x**3: 2 multiplies; sum: 24 - 4 adds; tanh: transcendental.
  assert counted['flops'] == 24 + 24 + 2 * 24 + (24 - 4)
  assert counted['transcendentals'] == 24
  assert counted['macs'] == 0
  compiled = xla_cost(lambda x: jnp.sum(jnp.tanh(x) * 2.0 + x ** 3, axis=1), x)
  assert compiled['flops_lowered'] == counted['flops']
  assert compiled['transcendentals_lowered'] == counted['transcendentals']


def test_scan_counts_length_times_while_is_flagged_cond_takes_max_branch():
  x = jnp.ones((8, 8))
  step = jaxpr_cost(lambda x: x @ x, x)['flops']
  scanned = jaxpr_cost(lambda x: lax.scan(lambda c, _: (c @ x, None), x, None, length=5)[0], x)
  assert scanned['flops'] == 5 * step and scanned['scans'] == 1
  looped = jaxpr_cost(lambda x: lax.while_loop(lambda c: c.sum() < 1e9, lambda c: c @ x, x), x)
  assert looped['while_loops'] == 1 and looped['notes']
  branched = jaxpr_cost(lambda x: lax.cond(x.sum() > 0, lambda a: a @ a @ a, lambda a: a + 1, x), x)
  predicate = jaxpr_cost(lambda x: (x.sum() > 0).astype(jnp.int32), x)['flops']
  assert branched['flops'] - predicate == 2 * step and branched['conds'] == 1


def test_custom_vjp_remat_and_vmap_count_the_forward_once():
  x = jnp.ones((8, 8))
  step = 2 * 8 * 8 * 8

  @jax.custom_vjp
  def square(x):
    return x @ x
  square.defvjp(lambda x: (x @ x, x), lambda saved, g: (g @ saved @ saved,))

  assert jaxpr_cost(square, x)['flops'] == step
  assert jaxpr_cost(jax.checkpoint(lambda x: x @ x), x)['flops'] == step
  assert jaxpr_cost(jax.vmap(lambda x: x @ x), jnp.ones((3, 8, 8)))['flops'] == 3 * step
  assert jaxpr_cost(jax.jit(jax.jit(lambda x: x @ x)), x)['flops'] == step


def test_flops_scale_linearly_with_batch():
  model = SmallCNN(rngs=nnx.Rngs(0))
  model.eval()
  counts = {b: model_jaxpr_cost(model, jnp.ones((b, 16, 16, 3)), per_layer=False) for b in (1, 2, 5)}
  assert counts[5]['macs'] == 5 * counts[1]['macs']
  for key in ('flops', 'flops_excluding_padding', 'bytes'):
    per_example = counts[2][key] - counts[1][key]
    assert counts[5][key] == counts[1][key] + 4 * per_example
  # Only BatchNorm's per-channel arithmetic on its statistics does not scale with the batch.
  assert 0 <= counts[1]['flops'] - (counts[2]['flops'] - counts[1]['flops']) < 100
  graphdef, state = nnx.split(model)
  fn = lambda s, x: nnx.merge(graphdef, s)(x)
  xla_one = xla_cost(fn, state, jnp.ones((1, 16, 16, 3)))['flops']
  assert xla_cost(fn, state, jnp.ones((5, 16, 16, 3)))['flops'] == pytest.approx(5 * xla_one, rel=0.01)


class SmallCNN(nnx.Module):
  """conv-BN-relu, strided conv, avg pool, linear."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(3, 8, (3, 3), rngs=rngs)
    self.bn1 = nnx.BatchNorm(8, rngs=rngs)
    self.conv2 = nnx.Conv(8, 16, (3, 3), strides=2, rngs=rngs)
    self.head = nnx.Linear(16, 10, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = nnx.relu(self.bn1(self.conv1(x)))
    x = nnx.avg_pool(nnx.relu(self.conv2(x)), (2, 2), strides=(2, 2))
    return self.head(x.mean(axis=(1, 2)))


class Separable(nnx.Module):
  """Depthwise 3x3 (stride) + BN + relu6, pointwise 1x1 + BN + relu6."""

  def __init__(self, c_in: int, c_out: int, stride: int, *, rngs: nnx.Rngs):
    self.depthwise = nnx.Conv(c_in, c_in, (3, 3), strides=stride, feature_group_count=c_in,
                              use_bias=False, rngs=rngs)
    self.bn1 = nnx.BatchNorm(c_in, rngs=rngs)
    self.pointwise = nnx.Conv(c_in, c_out, (1, 1), use_bias=False, rngs=rngs)
    self.bn2 = nnx.BatchNorm(c_out, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = jax.nn.relu6(self.bn1(self.depthwise(x)))
    return jax.nn.relu6(self.bn2(self.pointwise(x)))


class TinyMobileNet(nnx.Module):
  """Stem conv, three separable blocks, global pool, linear, softmax."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.stem = nnx.Conv(3, 8, (3, 3), strides=2, rngs=rngs)
    self.blocks = nnx.List([Separable(8, 16, 1, rngs=rngs), Separable(16, 32, 2, rngs=rngs),
                            Separable(32, 32, 1, rngs=rngs)])
    self.head = nnx.Linear(32, 10, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.stem(x)
    for block in self.blocks:
      x = block(x)
    return jax.nn.softmax(self.head(x.mean(axis=(1, 2))))


def _xla_over_jaxpr(model, input_shape):
  model.eval()
  x = jnp.ones((2, *input_shape))
  graphdef, state = nnx.split(model)
  xla = xla_cost(lambda s, x: nnx.merge(graphdef, s)(x), state, x)
  counted = model_jaxpr_cost(model, x, per_layer=False)
  assert xla['status'] == 'ok', xla['notes']
  assert xla['flops_lowered'] == pytest.approx(counted['flops_excluding_padding'], rel=1e-6)
  return xla['flops'] / counted['flops_excluding_padding']


@pytest.mark.parametrize('make', [SmallCNN, TinyMobileNet])
def test_xla_and_jaxpr_agree_on_small_models(make):
  assert _xla_over_jaxpr(make(rngs=nnx.Rngs(0)), (16, 16, 3)) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize('family', ['cnn', 'resnet', 'mobilenet', 'mlp'])
def test_xla_and_jaxpr_agree_on_every_registered_family(family):
  registry = pytest.importorskip('efficiency.models.registry')
  model = registry.create_model(dict(name=family, width=8, depth=2), num_classes=10,
                                in_channels=3, rngs=nnx.Rngs(0))
  assert _xla_over_jaxpr(model, (12, 12, 3)) == pytest.approx(1.0, abs=0.05)


def test_per_layer_rows_sum_to_total_and_name_the_modules():
  model = TinyMobileNet(rngs=nnx.Rngs(0))
  model.eval()
  conv_call = nnx.Conv.__call__
  counted = model_jaxpr_cost(model, jnp.ones((1, 16, 16, 3)))
  assert nnx.Conv.__call__ is conv_call   # classes restored after tracing
  rows = {row['name']: row for row in counted['per_layer']}
  for field in ('flops', 'macs', 'flops_excluding_padding', 'transcendentals', 'bytes'):
    assert sum(row[field] for row in counted['per_layer']) == counted[field]
  assert {'stem', 'blocks.0.depthwise', 'blocks.2.pointwise', 'blocks.1.bn2', 'head'} <= set(rows)
  assert rows['blocks.0.depthwise']['type'] == 'Conv'
  assert rows['blocks.0.depthwise']['params'] == 3 * 3 * 8
  assert rows['head']['macs'] == 32 * 10
  assert rows['(other)']['transcendentals'] == 10   # softmax's exp, outside every submodule


def test_named_scopes_are_rows_for_plain_functions():
  def two_layers(x, w1, w2):
    with jax.named_scope('encoder'):
      h = jnp.tanh(x @ w1)
    with jax.named_scope('decoder'):
      return jax.jit(lambda h: h @ w2)(h)

  x, w1, w2 = jnp.ones((4, 6)), jnp.ones((6, 5)), jnp.ones((5, 3))
  rows = {row['name']: row for row in jaxpr_cost(two_layers, x, w1, w2)['per_layer']}
  assert rows['encoder']['macs'] == 4 * 6 * 5 and rows['encoder']['transcendentals'] == 20
  assert rows['decoder']['macs'] == 4 * 5 * 3
