"""Tests of the model families, their layers and the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from efficiency import config as config_lib
from efficiency.errors import ConfigError
from efficiency.models import layers, registry
from efficiency.models.cnn import CNN, conv_plan

FAMILIES = ('cnn', 'resnet', 'mobilenet', 'mlp')
BATCH_NORM_FAMILIES = ('cnn', 'resnet', 'mobilenet')


def _build(name, width=2, depth=1, seed=0, in_channels=3, num_classes=7, **kwargs):
  return registry.create_model(dict(name=name, width=width, depth=depth, **kwargs),
                               num_classes=num_classes, in_channels=in_channels,
                               rngs=nnx.Rngs(seed))


def _images(resolution, batch=2, channels=3, seed=0):
  return jax.random.normal(jax.random.key(seed), (batch, resolution, resolution, channels))


@nnx.jit
def _jitted_logits(model, x):
  return model(x)


def _param_count(model):
  return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('width,depth', [(2, 1), (5, 3)])
def test_logits_shape_at_any_resolution(name, width, depth):
  model = _build(name, width, depth)
  for resolution in (8, 5, 1):
    logits = _jitted_logits(model, _images(resolution))
    assert logits.shape == (2, 7), (name, width, depth, resolution)
    assert logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize('name', FAMILIES)
def test_width_and_depth_change_the_model(name):
  base = _param_count(_build(name, width=2, depth=1))
  assert _param_count(_build(name, width=5, depth=1)) > base
  assert _param_count(_build(name, width=2, depth=3)) > base


def test_cnn_param_count_by_hand():
  # in 1, width 2, depth 2 -> conv 1->2 (stride 1), conv 2->4 (stride 2), head 4->3.
  with_norm = (3 * 3 * 1 * 2 + 2 * 2) + (3 * 3 * 2 * 4 + 2 * 4) + (4 * 3 + 3)
  without_norm = (3 * 3 * 1 * 2 + 2) + (3 * 3 * 2 * 4 + 4) + (4 * 3 + 3)
  model = CNN(in_channels=1, num_classes=3, width=2, depth=2, rngs=nnx.Rngs(0))
  assert _param_count(model) == with_norm == 117
  model = CNN(in_channels=1, num_classes=3, width=2, depth=2, batch_norm=False, rngs=nnx.Rngs(0))
  assert _param_count(model) == without_norm == 111


def test_resnet_param_count_by_hand():
  # width 2, depth 1, 2 stages: stem 1->2, block 2->2 (identity), block 2->4/2 (projection).
  stem = 3 * 3 * 1 * 2 + 2 * 2
  block1 = 2 * (3 * 3 * 2 * 2 + 2 * 2)
  block2 = (3 * 3 * 2 * 4 + 2 * 4) + (3 * 3 * 4 * 4 + 2 * 4) + (1 * 1 * 2 * 4 + 2 * 4)
  head = 4 * 3 + 3
  model = _build('resnet', width=2, depth=1, stages=2, in_channels=1, num_classes=3)
  assert _param_count(model) == stem + block1 + block2 + head


def test_mobilenet_uses_depthwise_convs():
  model = _build('mobilenet', width=4, depth=1, in_channels=1, num_classes=3)
  depthwise = model.blocks[0].depthwise.conv
  assert depthwise.feature_group_count == 4
  assert depthwise.kernel[...].shape == (3, 3, 1, 4)
  assert model.blocks[0].pointwise.conv.kernel[...].shape == (1, 1, 4, 8)


def test_conv_plan_doubles_channels_at_odd_layers_up_to_the_cap():
  assert conv_plan(32, 3, 3) == [(32, 1), (64, 2), (64, 1)]
  assert conv_plan(4, 8, 2) == [(4, 1), (8, 2), (8, 1), (16, 2), (16, 1), (16, 1), (16, 1),
                                (16, 1)]
  assert conv_plan(4, 3, 3, first_downsample=0) == [(8, 2), (8, 1), (16, 2)]


def test_mlp_param_count_does_not_depend_on_resolution():
  model = _build('mlp', width=6, depth=2, grid=4, in_channels=1, num_classes=3)
  assert _param_count(model) == (16 * 6 + 6) + (6 * 6 + 6) + (6 * 3 + 3)
  assert model(_images(9, channels=1)).shape == (2, 3)


def test_global_avg_pool_as_matmul_is_the_mean():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5, 7, 4)).astype(np.float32))
  expected = np.asarray(x).mean(axis=(1, 2))
  np.testing.assert_allclose(layers.global_avg_pool(x), expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(layers.global_avg_pool(x, as_matmul=True), expected, rtol=1e-5, atol=1e-6)
  grad = jax.grad(lambda x: layers.global_avg_pool(x, as_matmul=True).sum())(x)
  np.testing.assert_allclose(grad, np.full(x.shape, 1.0 / 35), rtol=1e-6)


def test_adaptive_avg_pool():
  x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)
  assert layers.adaptive_avg_pool(x, 4) is x
  pooled = layers.adaptive_avg_pool(x, 2)[0, :, :, 0]
  np.testing.assert_allclose(pooled, [[2.5, 4.5], [10.5, 12.5]])
  one_pixel = jnp.full((1, 1, 1, 2), 3.0)
  np.testing.assert_allclose(layers.adaptive_avg_pool(one_pixel, 3), jnp.full((1, 3, 3, 2), 3.0))
  # 3 -> 2: bins [0, 2) and [1, 3) overlap in the middle row/column.
  x3 = jnp.arange(9, dtype=jnp.float32).reshape(1, 3, 3, 1)
  np.testing.assert_allclose(layers.adaptive_avg_pool(x3, 2)[0, :, :, 0], [[2, 3], [5, 6]])


@pytest.mark.parametrize('name', FAMILIES)
def test_same_seed_same_model_other_seed_other_model(name):
  x = _images(6)
  first, second, other = _build(name, seed=3), _build(name, seed=3), _build(name, seed=4)
  for a, b in zip(jax.tree.leaves(nnx.state(first)), jax.tree.leaves(nnx.state(second))):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(first(x), second(x))
  assert not np.allclose(first(x), other(x))


@pytest.mark.parametrize('name', BATCH_NORM_FAMILIES)
def test_eval_mode_uses_running_statistics(name):
  model = _build(name)
  x = _images(6, batch=4)
  model(x)  # training mode: updates the running averages
  stats_after_train_call = jax.tree.leaves(nnx.state(model, nnx.BatchStat))
  initial = jax.tree.leaves(nnx.state(_build(name), nnx.BatchStat))
  assert any(not np.allclose(a, b) for a, b in zip(stats_after_train_call, initial))

  model.eval()
  first, second = model(x), model(x)
  np.testing.assert_array_equal(first, second)
  for a, b in zip(jax.tree.leaves(nnx.state(model, nnx.BatchStat)), stats_after_train_call):
    np.testing.assert_array_equal(a, b)
  # In eval mode an example's logits do not depend on the rest of the batch.
  np.testing.assert_allclose(model(x[:1]), first[:1], rtol=1e-5, atol=1e-5)
  model.train()
  assert not np.allclose(model(x[:1]), first[:1], atol=1e-3)


def _one_line_config_error(model_cfg, *fragments):
  with pytest.raises(ConfigError) as error:
    registry.check_model_config(model_cfg)
  message = str(error.value)
  assert '\n' not in message
  for fragment in fragments:
    assert fragment in message, message
  return message


def test_registry_errors_are_one_line_naming_the_field():
  _one_line_config_error(dict(name='vgg', width=8, depth=2), 'config.model.name', "'vgg'",
                         'cnn, mlp, mobilenet, resnet')
  _one_line_config_error(dict(width=8, depth=2), 'config.model.name is missing')
  _one_line_config_error(dict(name='cnn', width=0, depth=2), 'config.model.width=0', '[1, 1024]')
  _one_line_config_error(dict(name='cnn', width=8, depth=65), 'config.model.depth=65', '[1, 64]')
  _one_line_config_error(dict(name='cnn', width=True, depth=2), 'config.model.width=True')
  _one_line_config_error(dict(name='resnet', width=8), 'config.model.depth is missing')
  _one_line_config_error(dict(name='cnn', width=8, depth=2, grid=4), 'config.model.grid',
                         "'cnn'", 'batch_norm, max_downsamples')
  _one_line_config_error(dict(name='mlp', width=8, depth=2, batch_norm=True),
                         'config.model.batch_norm', "'mlp'", 'grid')
  _one_line_config_error(dict(name='cnn', width=8, depth=2, batch_norm=1),
                         'config.model.batch_norm=1', 'True or False')
  _one_line_config_error(dict(name='mlp', width=8, depth=2, grid=0), 'config.model.grid=0',
                         '[1, 256]')
  _one_line_config_error(dict(name='cnn', width=8, depth=2, num_classes=3),
                         'config.model.num_classes')
  with pytest.raises(ConfigError, match='config.model.name'):
    registry.family_info('vgg')


def test_default_config_builds_the_cnn():
  model_cfg = config_lib.defaults().model
  registry.check_model_config(model_cfg)
  model = registry.create_model(model_cfg, num_classes=10, in_channels=1, rngs=nnx.Rngs(0))
  assert isinstance(model, CNN)
  assert model(_images(8, channels=1)).shape == (2, 10)


def test_user_registered_family(monkeypatch):
  monkeypatch.setattr(registry, 'MODEL_FAMILIES', dict(registry.MODEL_FAMILIES))

  @registry.register('linear_probe')
  class LinearProbe(nnx.Module):
    """A linear classifier on globally pooled pixels."""
    KWARG_RANGES = {'scale': (0.0, 10.0)}

    def __init__(self, *, in_channels, num_classes, width, depth, scale=1.0, rngs):
      self.scale = scale
      self.head = layers.dense(in_channels, num_classes, relu_follows=False, rngs=rngs)

    def __call__(self, x):
      return self.head(self.scale * layers.global_avg_pool(x))

  model = _build('linear_probe', scale=2.0)
  assert isinstance(model, LinearProbe) and model.scale == 2.0
  assert model(_images(3)).shape == (2, 7)
  _one_line_config_error(dict(name='linear_probe', width=1, depth=1, scale=20.0),
                         'config.model.scale=20.0', '[0.0, 10.0]')
  _one_line_config_error(dict(name='linear_probe', width=1, depth=1, bias=False),
                         'config.model.bias', 'scale')
  info = registry.family_info('linear_probe')
  assert info['title'] == 'LinearProbe'
  assert info['description'] == 'A linear classifier on globally pooled pixels.'

  with pytest.raises(ConfigError, match="'cnn' is already registered"):
    registry.register('cnn')(LinearProbe)

  class NoRngs(nnx.Module):
    def __init__(self, *, in_channels, num_classes, width, depth):
      pass

  with pytest.raises(ConfigError, match='lacks the keyword arguments rngs'):
    registry.register('no_rngs')(NoRngs)


@pytest.mark.parametrize('name', FAMILIES)
def test_family_info_cites_a_paper(name):
  info = registry.family_info(name)
  assert set(info) == {'title', 'paper', 'citation', 'description'}
  assert all(isinstance(value, str) and value for value in info.values())
  assert any(year in info['citation'] for year in ('1986', '1998', '2016', '2017'))
