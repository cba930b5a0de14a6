"""native_conv's gradients equal lax's, run where they should, and step aside where they cannot.

The equality tests need the native library; where this machine cannot build
it (no C++ compiler), they are skipped with the reason and the fallback tests
still run.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from efficiency.measure import xla_cost
from efficiency.models import fast_conv, native_conv, registry

_NHWC = ('NHWC', 'HWIO', 'NHWC')
_TARGETS = ('efficiency_conv_kernel_gradient', 'efficiency_conv_input_gradient')


def _native_or_skip() -> int:
  found = native_conv.status()
  if not found['available']:
    pytest.skip(found['reason'])
  return found['vector_width']


def _grads(conv_fn, x, kernel, strides, padding):
  def loss(x, kernel):   # sin: every output gets a different cotangent
    return jnp.sum(jnp.sin(conv_fn(x, kernel, strides, padding, dimension_numbers=_NHWC)))
  fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
  return fn(x, kernel), fn.lower(x, kernel).as_text()


# (batch, height, width, C_in, C_out, kernel (h, w), strides, padding), the channels in native
# vector widths, so every case runs the native code whatever the machine's width.
CASES = [
    pytest.param((3, 9, 7, 1, 2, (3, 3), (2, 2), 'SAME'), id='strided-odd'),
    pytest.param((2, 8, 8, 2, 1, (3, 3), (1, 1), 'SAME'), id='stride-1'),
    pytest.param((2, 8, 8, 2, 4, (3, 3), (2, 2), 'SAME'), id='wide-and-strided'),
    pytest.param((2, 9, 9, 3, 3, (3, 3), (1, 1), ((2, 0), (1, 3))), id='explicit-pads'),
    pytest.param((2, 7, 9, 3, 2, (1, 3), (2, 1), 'SAME'), id='1x3-strides-2x1'),
    pytest.param((2, 16, 14, 1, 1, (5, 5), (2, 2), 'VALID'), id='5x5-valid'),
    pytest.param((2, 6, 6, 1, 1, (2, 2), (3, 3), ((0, 1), (1, 0))), id='2x2-stride-3'),
    pytest.param((2, 8, 1, 1, 1, (2, 2), (2, 2), 'SAME'), id='one-column-a-tap-past-the-edge'),
    pytest.param((2, 1, 30, 1, 1, (3, 3), (3, 3), ((0, 2), (1, 1))), id='one-row-taps-past-the-edge'),
]


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('odd_c_in', [False, True])
def test_gradients_match_lax(case, odd_c_in):
  width = _native_or_skip()
  n, h, w, c_in, c_out, kernel_hw, strides, padding = case
  c_in = 3 if odd_c_in else c_in * width     # an odd C_in: the kernel gradient's row tails
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(n, h, w, c_in)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(*kernel_hw, c_in, c_out * width)), jnp.float32)
  reference, _ = _grads(lax.conv_general_dilated, x, kernel, strides, padding)
  grads, hlo = _grads(fast_conv.conv_general_dilated, x, kernel, strides, padding)
  assert 'efficiency_conv_kernel_gradient' in hlo
  native_input = strides != (1, 1) and not odd_c_in
  assert ('efficiency_conv_input_gradient' in hlo) == native_input
  for name, grad, ref in zip(('input', 'kernel'), grads, reference):
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-4 * float(jnp.abs(ref).max()),
                               err_msg=f'gradient w.r.t. {name}')


def _direct_gradients(x, kernel, dy, strides, pads):
  """(dx, dkernel) of the convolution as the sum over taps it is, in float64 numpy."""
  (sh, sw), (n, h, w, _), (kh, kw, _, _), (_, oh, ow, _) = strides, x.shape, kernel.shape, dy.shape
  padded = np.pad(x.astype(np.float64), ((0, 0), pads[0], pads[1], (0, 0)))
  dkernel, dpadded = np.zeros(kernel.shape), np.zeros(padded.shape)
  for i in range(kh):
    for j in range(kw):
      rows, cols = slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)
      dkernel[i, j] = np.einsum('nhwc,nhwd->cd', padded[:, rows, cols], dy)
      dpadded[:, rows, cols] += np.einsum('nhwd,cd->nhwc', dy, kernel[i, j].astype(np.float64))
  return dpadded[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w], dkernel


def test_random_shapes_match_a_direct_sum():
  width = _native_or_skip()
  rng = np.random.default_rng(7)
  checked = 0
  while checked < 60:   # called directly: fast_conv would send the smallest images elsewhere
    n, h, w, kh, kw, sh, sw = (int(v) for v in rng.integers(1, (4, 13, 13, 6, 6, 4, 4)))
    pads = tuple((int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(2))
    oh, ow = (h + sum(pads[0]) - kh) // sh + 1, (w + sum(pads[1]) - kw) // sw + 1
    if oh < 1 or ow < 1:
      continue
    c_in = int(rng.choice([1, 3, width, 2 * width, 5 * width]))
    c_out = int(rng.choice([width, 2 * width, 3 * width, 5 * width]))
    x, kernel, dy = (rng.normal(size=shape).astype(np.float32) for shape in
                     ((n, h, w, c_in), (kh, kw, c_in, c_out), (n, oh, ow, c_out)))
    dx, dkernel = _direct_gradients(x, kernel, dy, (sh, sw), pads)
    case = f'{x.shape} {kernel.shape} strides {(sh, sw)} pads {pads}'
    got = native_conv.kernel_gradient(x, dy, kernel.shape, (sh, sw), pads)
    np.testing.assert_allclose(got, dkernel, rtol=1e-4, atol=1e-5 * np.abs(dkernel).max(),
                               err_msg=case)
    if c_in % width == 0:
      got = native_conv.input_gradient(dy, kernel, x.shape, (sh, sw), pads)
      np.testing.assert_allclose(got, dx, rtol=1e-4, atol=1e-5 * np.abs(dx).max(), err_msg=case)
    checked += 1


def test_single_channel_shifted_form_takes_the_native_kernel_gradient():
  width = _native_or_skip()
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 10, 9, 1)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 1, width)), jnp.float32)
  shifted = lambda *args, **kwargs: fast_conv.conv_general_dilated(*args, **kwargs,
                                                                   single_channel='shifted')
  reference, _ = _grads(lax.conv_general_dilated, x, kernel, (1, 1), 'SAME')
  grads, hlo = _grads(shifted, x, kernel, (1, 1), 'SAME')
  assert 'efficiency_conv_kernel_gradient' in hlo
  for grad, ref in zip(grads, reference):
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-4 * float(jnp.abs(ref).max()))


def test_per_example_gradients_and_an_empty_batch():
  width = _native_or_skip()
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 1, 8, 8, width)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, width, width)), jnp.float32)

  def kernel_grad(conv_fn, x):
    loss = lambda k: jnp.sum(jnp.sin(conv_fn(x, k, (2, 2), 'SAME', dimension_numbers=_NHWC)))
    return jax.grad(loss)(kernel)
  per_example = jax.jit(jax.vmap(lambda x: kernel_grad(fast_conv.conv_general_dilated, x)))
  reference = jax.vmap(lambda x: kernel_grad(lax.conv_general_dilated, x))(x)
  assert 'efficiency_conv_kernel_gradient' in per_example.lower(x).as_text()
  np.testing.assert_allclose(per_example(x), reference, rtol=1e-4,
                             atol=1e-4 * float(jnp.abs(reference).max()))
  empty = jnp.zeros((0, 8, 8, width))
  np.testing.assert_array_equal(jax.jit(lambda x: kernel_grad(fast_conv.conv_general_dilated, x))(
      empty), np.zeros(kernel.shape))


def test_gradients_repeat_exactly():
  width = _native_or_skip()
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(16, 14, 14, 2 * width)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 2 * width, 4 * width)), jnp.float32)
  first, _ = _grads(fast_conv.conv_general_dilated, x, kernel, (2, 2), 'SAME')
  for _ in range(10):     # threads take the batch's runs in a different order each time
    again, _ = _grads(fast_conv.conv_general_dilated, x, kernel, (2, 2), 'SAME')
    for grad, same in zip(first, again):
      np.testing.assert_array_equal(grad, same)


def test_channels_off_the_vector_width_and_disabled_code_use_xla():
  width = _native_or_skip()
  x = jnp.ones((2, 8, 8, width))
  _, hlo = _grads(fast_conv.conv_general_dilated, x, jnp.ones((3, 3, width, width + 1)), (2, 2),
                  'SAME')
  assert not any(target in hlo for target in _TARGETS)
  with native_conv.disabled():
    _, hlo = _grads(fast_conv.conv_general_dilated, x, jnp.ones((3, 3, width, width)), (2, 2),
                    'SAME')
  assert not any(target in hlo for target in _TARGETS)


def test_other_platforms_lower_xla_gradients():
  width = _native_or_skip()
  x, kernel = jnp.ones((2, 8, 8, width)), jnp.ones((3, 3, width, width))
  grad = jax.jit(jax.grad(lambda x, k: fast_conv.conv_general_dilated(
      x, k, (2, 2), 'SAME', dimension_numbers=_NHWC).sum(), argnums=(0, 1)))
  checks = [jax.export.DisabledSafetyCheck.custom_call(target) for target in _TARGETS]
  text = {platform: jax.export.export(grad, platforms=[platform], disabled_checks=checks)(
      x, kernel).mlir_module() for platform in ('cpu', 'cuda')}
  assert all(target in text['cpu'] for target in _TARGETS)
  assert not any(target in text['cuda'] for target in _TARGETS)


def test_model_gradient_and_forward_flops_unchanged():
  width = _native_or_skip()
  model = registry.create_model(dict(name='cnn', width=width, depth=3), num_classes=10,
                                in_channels=1, rngs=nnx.Rngs(0))
  model.eval()   # running statistics: a pure function of the parameters
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  images = jnp.asarray(np.random.default_rng(1).normal(size=(4, 12, 12, 1)), jnp.float32)

  def loss(params):
    return jnp.sum(nnx.merge(graphdef, params, rest)(images) ** 2)
  grads = jax.jit(jax.grad(loss))(params)
  hlo = jax.jit(jax.grad(loss)).lower(params).as_text()
  forward = xla_cost(lambda p: nnx.merge(graphdef, p, rest)(images), params)['flops_lowered']
  with native_conv.disabled():
    reference = jax.jit(jax.grad(loss))(params)
    reference_forward = xla_cost(lambda p: nnx.merge(graphdef, p, rest)(images),
                                 params)['flops_lowered']
  assert 'efficiency_conv_kernel_gradient' in hlo
  assert forward == reference_forward
  for (path, grad), (_, ref) in zip(jax.tree_util.tree_leaves_with_path(grads),
                                    jax.tree_util.tree_leaves_with_path(reference)):
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-5, err_msg=str(path))


@pytest.fixture
def fresh_status(monkeypatch, tmp_path):
  """status() recomputed under the test's environment, and again after it."""
  monkeypatch.setenv('EFFICIENCY_CACHE', str(tmp_path))
  native_conv.status.cache_clear()
  yield
  native_conv.status.cache_clear()


def test_nothing_is_built_when_the_default_backend_is_not_the_cpu(fresh_status, monkeypatch):
  monkeypatch.setattr(native_conv.jax, 'default_backend', lambda: 'gpu')
  monkeypatch.setattr(native_conv, 'build', lambda *args, **kwargs: pytest.fail('built'))
  assert native_conv.vector_width() is None
  x, kernel = jnp.ones((2, 8, 8, 16)), jnp.ones((3, 3, 16, 16))
  _, hlo = _grads(fast_conv.conv_general_dilated, x, kernel, (2, 2), 'SAME')
  assert not any(target in hlo for target in _TARGETS)


def test_several_devices_keep_xla_gradients(monkeypatch):
  # A sharded batch would be gathered onto every device for the custom call (see vector_width).
  width = _native_or_skip()
  monkeypatch.setattr(native_conv.jax, 'device_count', lambda *args: 4)
  assert native_conv.vector_width() is None
  x, kernel = jnp.ones((2, 8, 8, width)), jnp.ones((3, 3, width, width))
  _, hlo = _grads(fast_conv.conv_general_dilated, x, kernel, (2, 2), 'SAME')
  assert not any(target in hlo for target in _TARGETS)


def test_a_failed_build_falls_back_to_xla(fresh_status, monkeypatch, caplog):
  monkeypatch.setenv('CXX', 'false')        # a compiler that always fails
  found = native_conv.status()
  assert not found['available'] and 'false failed' in found['reason']
  assert 'unavailable' in caplog.text
  assert native_conv.vector_width() is None
  x, kernel = jnp.ones((2, 8, 8, 16)), jnp.ones((3, 3, 16, 16))
  grads, hlo = _grads(fast_conv.conv_general_dilated, x, kernel, (2, 2), 'SAME')
  reference, _ = _grads(lax.conv_general_dilated, x, kernel, (2, 2), 'SAME')
  assert not any(target in hlo for target in _TARGETS)
  np.testing.assert_allclose(grads[1], reference[1], rtol=1e-5)


def test_switched_off_by_the_environment(fresh_status, monkeypatch):
  monkeypatch.setenv(native_conv.ENV_SWITCH, '0')
  assert native_conv.status() == dict(available=False, reason=f'{native_conv.ENV_SWITCH}=0',
                                      vector_width=None, library=None)


def test_builds_once_into_the_folder(tmp_path):
  _native_or_skip()
  path = native_conv.build(str(tmp_path))
  built = os.stat(path).st_mtime_ns
  assert native_conv.build(str(tmp_path)) == path and os.stat(path).st_mtime_ns == built
  assert [entry.name for entry in tmp_path.iterdir()] == [os.path.basename(path)]


def test_a_damaged_library_is_built_again(tmp_path):
  _native_or_skip()
  path = native_conv.build(str(tmp_path))
  with open(path, 'wb') as f:
    f.write(b'cut short')
  assert native_conv.load(str(tmp_path))[0] == path
  library = native_conv.load(str(tmp_path))[1]
  assert library.efficiency_vector_width() == native_conv.vector_width()
  assert os.path.getsize(path) > 1000


def test_a_failed_build_says_why(tmp_path):
  with pytest.raises(RuntimeError, match='false failed'):
    native_conv.build(str(tmp_path), compiler='false')
  assert list(tmp_path.iterdir()) == []     # no partial library left behind
