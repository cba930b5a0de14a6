"""fast_conv computes what lax.conv_general_dilated (nnx.Conv's default) computes, values and gradients.

Also: layers.conv uses it with nnx.Conv's parameters unchanged, and FLOP counts
stay as documented (unchanged for ungrouped convs, except the adds of the
kernel-row or kernel-tap sums where the window outgrows the image; 2*k*k - 1
per output element for depthwise layers).
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from efficiency.measure import count_params, jaxpr_cost, model_jaxpr_cost, xla_cost
from efficiency.models import fast_conv, layers, registry

# (batch, height, width, in, out, kernel, stride, groups, padding)
CASES = [
    pytest.param((2, 9, 7, 3, 5, 3, 1, 1, 'SAME'), id='plain'),
    pytest.param((2, 9, 7, 3, 5, 3, 2, 1, 'SAME'), id='strided'),
    pytest.param((2, 7, 7, 3, 4, 3, 1, 1, 'VALID'), id='valid'),
    pytest.param((2, 5, 6, 4, 6, 1, 1, 1, 'SAME'), id='1x1'),
    pytest.param((2, 5, 6, 4, 6, 1, 2, 1, 'SAME'), id='1x1-strided'),
    pytest.param((2, 8, 8, 4, 8, 3, 1, 2, 'SAME'), id='grouped'),
    pytest.param((3, 8, 8, 6, 6, 3, 1, 6, 'SAME'), id='depthwise'),
    pytest.param((2, 9, 7, 6, 6, 3, 2, 6, 'SAME'), id='depthwise-strided-odd'),
    pytest.param((2, 7, 6, 5, 5, 5, 2, 5, 'SAME'), id='depthwise-5x5'),
    pytest.param((2, 7, 7, 4, 4, 3, 1, 4, 'VALID'), id='depthwise-valid'),
    pytest.param((2, 6, 5, 4, 4, 3, 2, 4, ((2, 0), (1, 3))), id='depthwise-explicit-pads'),
    pytest.param((2, 1, 1, 8, 8, 3, 1, 8, 'SAME'), id='depthwise-1x1-input'),
    pytest.param((2, 1, 1, 3, 5, 3, 2, 1, 'SAME'), id='plain-1x1-input'),
    pytest.param((2, 8, 8, 3, 4, 3, 2, 1, 'SAME'), id='strided-even'),
    pytest.param((2, 10, 9, 2, 3, 5, 3, 1, 'SAME'), id='stride-3-5x5'),
    pytest.param((2, 9, 9, 2, 3, 3, 2, 1, 'VALID'), id='strided-valid'),
    pytest.param((2, 7, 8, 2, 3, 3, 2, 1, ((2, 0), (1, 3))), id='strided-explicit-pads'),
    pytest.param((2, 6, 6, 2, 3, 2, 2, 1, 'SAME'), id='strided-2x2'),
    pytest.param((2, 2, 2, 3, 5, 3, 1, 1, 'SAME'), id='window-outgrows-2x2-input'),
    pytest.param((2, 4, 4, 3, 5, 3, 2, 1, 'SAME'), id='window-outgrows-2x2-output'),
    pytest.param((2, 3, 2, 2, 3, 5, 1, 1, 'SAME'), id='window-outgrows-5x5-on-3x2'),
    pytest.param((2, 2, 2, 2, 3, 3, 1, 1, ((2, 0), (1, 1))), id='window-outgrows-explicit-pads'),
    pytest.param((2, 1, 1, 3, 4, 3, 1, 1, 'SAME'), id='window-outgrows-1x1-input-taps'),
    pytest.param((2, 1, 2, 3, 4, 5, 1, 1, 'SAME'), id='window-outgrows-5x5-on-1x2-taps'),
    pytest.param((2, 2, 2, 3, 4, 3, 2, 1, 'SAME'), id='window-outgrows-to-1x1-output-taps'),
]


def _operands(case, seed=0):
  n, h, w, c_in, c_out, k, _, groups, _ = case
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(n, h, w, c_in)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(k, k, c_in // groups, c_out)), jnp.float32)
  return x, kernel


def _loss(conv_fn, case):
  *_, stride, groups, padding = case
  dims = ('NHWC', 'HWIO', 'NHWC')

  def loss(x, kernel):
    dn = lax.conv_dimension_numbers(x.shape, kernel.shape, dims)
    y = conv_fn(x, kernel, (stride, stride), padding, dimension_numbers=dn,
                feature_group_count=groups)
    return jnp.sum(jnp.sin(y)), y   # sin: every output gets a different cotangent
  return loss


@pytest.mark.parametrize('case', CASES)
def test_values_and_gradients_match_lax(case):
  x, kernel = _operands(case)
  (ref_loss, ref_y), ref_grads = jax.value_and_grad(
      _loss(lax.conv_general_dilated, case), argnums=(0, 1), has_aux=True)(x, kernel)
  (loss, y), grads = jax.value_and_grad(
      _loss(fast_conv.conv_general_dilated, case), argnums=(0, 1), has_aux=True)(x, kernel)
  assert y.shape == ref_y.shape
  np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-4)
  for name, grad, ref in zip(('input', 'kernel'), grads, ref_grads):
    assert grad.shape == ref.shape, name
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-4, err_msg=f'gradient w.r.t. {name}')


def _primitives(fn, *args):
  """Names of the primitives in fn's jaxpr, nested jaxprs (custom_vjp, pjit) included."""
  names = set()

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      names.add(eqn.primitive.name)
      for value in eqn.params.values():
        inner = getattr(value, 'jaxpr', value)
        if hasattr(inner, 'eqns'):
          walk(inner)
  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return names


def test_only_depthwise_convs_take_the_multiply_add_path():
  depthwise = (2, 8, 8, 6, 6, 3, 1, 6, 'SAME')
  assert 'conv_general_dilated' not in _primitives(
      _loss(fast_conv.conv_general_dilated, depthwise), *_operands(depthwise))
  for case in ((2, 8, 8, 4, 8, 3, 1, 2, 'SAME'), (2, 9, 7, 3, 5, 3, 2, 1, 'SAME')):
    assert 'conv_general_dilated' in _primitives(
        _loss(fast_conv.conv_general_dilated, case), *_operands(case))


def _conv_count(case):
  x, kernel = _operands(case)
  _, _, _, _, _, _, stride, groups, padding = case
  jaxpr = jax.make_jaxpr(lambda x, k: fast_conv.conv_general_dilated(
      x, k, (stride, stride), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      feature_group_count=groups))(x, kernel)
  return sum(eqn.primitive.name == 'conv_general_dilated' for eqn in jaxpr.jaxpr.eqns)


@pytest.mark.parametrize('case, convs', [
    ((2, 2, 2, 3, 5, 3, 1, 1, 'SAME'), 3),    # 9 window positions > 4 pixels: 3 kernel rows
    ((2, 4, 4, 3, 5, 3, 2, 1, 'SAME'), 3),    # the 2x2 output (the input gradient's image)
    ((2, 3, 2, 2, 3, 5, 1, 1, 'SAME'), 5),
    ((2, 3, 3, 3, 5, 3, 1, 1, 'SAME'), 1),    # 9 positions, 9 pixels: lax's conv
    ((2, 1, 1, 3, 5, 3, 1, 1, 'SAME'), 9),    # a 1x3 row outgrows a 1x1 image too: 9 taps
    ((2, 2, 1, 3, 5, 3, 1, 1, 'SAME'), 9),    # and a 2x1 one
    ((2, 4, 4, 4, 6, 3, 2, 2, 'SAME'), 1),    # grouped
])
def test_kernel_pieces_only_where_the_window_outgrows_the_image(case, convs):
  assert _conv_count(case) == convs


@pytest.mark.parametrize('hw, valid_taps, adds', [
    ((2, 2), 4, 2),    # rows: k_h - 1 adds per output element
    ((1, 1), 1, 8),    # taps: k_h * k_w - 1
])
def test_kernel_pieces_count_every_tap_plus_their_sums(hw, valid_taps, adds):
  x, kernel = jnp.ones((2, *hw, 3)), jnp.ones((3, 3, 3, 5))
  outputs = 2 * hw[0] * hw[1] * 5
  conv = lambda fn: (lambda x, k: fn(x, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
  fast = jaxpr_cost(conv(fast_conv.conv_general_dilated), x, kernel)
  reference = jaxpr_cost(conv(lax.conv_general_dilated), x, kernel)
  for key in ('flops', 'flops_excluding_padding'):
    assert fast[key] == reference[key] + adds * outputs, key
  assert fast['macs'] == reference['macs'] == 3 * 9 * outputs
  assert fast['macs_excluding_padding'] == reference['macs_excluding_padding'] == (
      3 * valid_taps * outputs)
  fast_xla = xla_cost(conv(fast_conv.conv_general_dilated), x, kernel)['flops_lowered']
  assert fast_xla == xla_cost(conv(lax.conv_general_dilated), x, kernel)['flops_lowered'] + (
      adds * outputs)


def test_dilated_and_integer_convs_fall_back_to_lax():
  x = jnp.arange(2 * 6 * 6 * 3, dtype=jnp.int32).reshape(2, 6, 6, 3)
  kernel = jnp.ones((3, 3, 1, 3), jnp.int32)
  dn = ('NHWC', 'HWIO', 'NHWC')
  got = fast_conv.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=dn,
                                       feature_group_count=3)
  want = lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=dn,
                                  feature_group_count=3)
  np.testing.assert_array_equal(got, want)
  xf, kf = x.astype(jnp.float32), kernel.astype(jnp.float32)
  dilated = lambda conv: conv(xf, kf, (1, 1), 'SAME', rhs_dilation=(2, 2), dimension_numbers=dn,
                              feature_group_count=3)
  assert 'conv_general_dilated' in _primitives(lambda: dilated(fast_conv.conv_general_dilated))
  np.testing.assert_allclose(dilated(fast_conv.conv_general_dilated),
                             dilated(lax.conv_general_dilated), rtol=1e-6)


@pytest.mark.parametrize('groups', [1, 4])
def test_layers_conv_is_an_nnx_conv_with_unchanged_parameters(groups):
  fast = layers.conv(4, 4, 3, 2, groups, use_bias=True, rngs=nnx.Rngs(0))
  plain = nnx.Conv(4, 4, (3, 3), strides=(2, 2), padding='SAME', feature_group_count=groups,
                   use_bias=True, rngs=nnx.Rngs(0))
  assert isinstance(fast, nnx.Conv) and fast.conv_general_dilated is fast_conv.conv_general_dilated
  fast_shapes = jax.tree.map(jnp.shape, nnx.state(fast, nnx.Param))
  assert fast_shapes == jax.tree.map(jnp.shape, nnx.state(plain, nnx.Param))
  assert count_params(fast)['trainable'] == count_params(plain)['trainable']
  nnx.update(plain, nnx.state(fast))   # same weights: the same function, bias included
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 7, 7, 4)), jnp.float32)
  np.testing.assert_allclose(fast(x), plain(x), rtol=1e-5, atol=1e-5)


def _family(name, seed=0):
  model = registry.create_model(dict(name=name, width=8, depth=3), num_classes=10, in_channels=3,
                                rngs=nnx.Rngs(seed))
  model.eval()
  return model


@pytest.mark.parametrize('family', ['cnn', 'resnet'])
def test_flops_of_ungrouped_families_are_unchanged(family):
  x = jnp.ones((2, 9, 9, 3))
  fast = model_jaxpr_cost(_family(family), x, per_layer=False)
  reference = model_jaxpr_cost(layers.use_lax_convolutions(_family(family)), x, per_layer=False)
  for key in ('flops', 'macs', 'flops_excluding_padding', 'macs_excluding_padding', 'bytes'):
    assert fast[key] == reference[key], key


def test_mobilenet_depthwise_flops_follow_the_documented_relation():
  x = jnp.ones((2, 9, 9, 3))
  model = _family('mobilenet')
  fast = model_jaxpr_cost(model, x)
  reference = model_jaxpr_cost(layers.use_lax_convolutions(_family('mobilenet')), x)
  depthwise_rows = [r for r in fast['per_layer'] if r['name'].endswith('depthwise.conv')]
  assert depthwise_rows and all(r['macs'] == 0 for r in depthwise_rows)
  ref_rows = {r['name']: r for r in reference['per_layer']}
  outputs_total = 0
  for row in depthwise_rows:
    ref = ref_rows[row['name']]
    outputs = ref['macs'] // 9               # 3x3 taps, one input channel per group
    assert row['flops'] == 17 * outputs == ref['flops'] - outputs   # 2*k*k - 1 per output
    assert row['flops_excluding_padding'] == row['flops']          # padding taps are computed
    outputs_total += outputs
  assert fast['flops'] == reference['flops'] - outputs_total
  graphdef, state = nnx.split(model)
  xla = xla_cost(lambda s, x: nnx.merge(graphdef, s)(x), state, x)
  assert xla['flops_lowered'] == pytest.approx(fast['flops_excluding_padding'], rel=1e-6)


def test_depthwise_jaxpr_cost_counts_each_tap():
  x, kernel = jnp.ones((2, 5, 5, 4)), jnp.ones((3, 3, 1, 4))
  cost = jaxpr_cost(lambda x, k: fast_conv.depthwise_conv(x, k, (1, 1), ((1, 1), (1, 1))),
                    x, kernel)
  assert cost['flops'] == (2 * 9 - 1) * 2 * 5 * 5 * 4


SINGLE_CHANNEL_CASES = [
    pytest.param((2, 9, 7, 1, 5, 3, 1, 1, 'SAME'), id='same'),
    pytest.param((2, 9, 7, 1, 5, 3, 2, 1, 'SAME'), id='strided-odd'),
    pytest.param((3, 8, 8, 1, 4, 3, 2, 1, 'SAME'), id='strided-even'),
    pytest.param((2, 7, 7, 1, 3, 3, 1, 1, 'VALID'), id='valid'),
    pytest.param((2, 6, 5, 1, 3, 5, 2, 1, ((2, 0), (1, 3))), id='5x5-explicit-pads'),
    pytest.param((2, 1, 1, 1, 4, 3, 1, 1, 'SAME'), id='1x1-input'),
]


def _shifted(*args, **kwargs):
  return fast_conv.conv_general_dilated(*args, single_channel='shifted', **kwargs)


@pytest.mark.parametrize('case', SINGLE_CHANNEL_CASES)
def test_single_channel_shifted_form_matches_lax(case):
  x, kernel = _operands(case)
  (ref_loss, ref_y), ref_grads = jax.value_and_grad(
      _loss(lax.conv_general_dilated, case), argnums=(0, 1), has_aux=True)(x, kernel)
  (loss, y), grads = jax.value_and_grad(_loss(_shifted, case), argnums=(0, 1),
                                        has_aux=True)(x, kernel)
  np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-4)
  for name, grad, ref in zip(('input', 'kernel'), grads, ref_grads):
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-4, err_msg=f'gradient w.r.t. {name}')


def test_single_channel_form_is_opt_in_and_counted_per_tap():
  case = (2, 5, 5, 1, 4, 3, 1, 1, 'SAME')
  x, kernel = _operands(case)
  outputs = 2 * 5 * 5 * 4

  def flops(form=None):
    def conv(x, k):   # a new function each time: the form is read while tracing
      with contextlib.ExitStack() as stack:
        if form is not None:
          stack.enter_context(fast_conv.single_channel_form(form))
        return fast_conv.conv_general_dilated(x, k, (1, 1), 'SAME',
                                              dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jaxpr_cost(conv, x, kernel)['flops']
  assert flops() == flops('conv') == 2 * 9 * outputs       # default: lax's conv
  assert flops('shifted') == (2 * 9 - 1) * outputs
  assert flops() == 2 * 9 * outputs                       # the form was scoped
  with pytest.raises(ValueError, match='not one of'):
    with fast_conv.single_channel_form('im2col'):
      pass


@pytest.mark.parametrize('form', ['shifted', 'shifted_for_training'])
def test_conv_bn_relu_single_channel_forms_compute_the_same(form):
  reference = layers.ConvBNReLU(1, 6, 3, 2, rngs=nnx.Rngs(0))
  fast = layers.ConvBNReLU(1, 6, 3, 2, single_channel=form, rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 9, 9, 1)), jnp.float32)
  for mode in ('train', 'eval'):
    getattr(reference, mode)()
    getattr(fast, mode)()
    np.testing.assert_allclose(fast(x), reference(x), rtol=1e-5, atol=1e-5, err_msg=mode)
  np.testing.assert_allclose(fast.norm.mean[...], reference.norm.mean[...], rtol=1e-5, atol=1e-6)

  def flops(layer, mode):
    getattr(layer, mode)()
    graphdef, state = nnx.split(layer)
    return jaxpr_cost(lambda s, x: nnx.merge(graphdef, s)(x), state, x)['flops']
  shifted_in_training, shifted_in_eval = flops(fast, 'train'), flops(fast, 'eval')
  conv_in_eval = flops(reference, 'eval')
  assert (shifted_in_eval < conv_in_eval) == (form == 'shifted')
  assert shifted_in_training != conv_in_eval
  with pytest.raises(ValueError, match='not one of'):
    layers.ConvBNReLU(1, 6, single_channel='fast', rngs=nnx.Rngs(0))
