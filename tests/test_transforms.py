"""Tests of the input pipeline: resize methods, crop, normalization, preprocess."""

import jax
import ml_collections
import numpy as np
import pytest

from efficiency.data import transforms
from efficiency.errors import ConfigError


def _input_cfg(**overrides):
  cfg = dict(resolution=None, resize='area', antialias=True, center_crop=1.0, normalize=False)
  cfg.update(overrides)
  return ml_collections.ConfigDict(cfg)


def _smooth_images(n=2, size=32, channels=3, seed=0):
  """Low-frequency random images in [0.1, 0.9]: a few sinusoids per image and channel."""
  rng = np.random.default_rng(seed)
  grid = np.linspace(0.0, 1.0, size)
  yy, xx = np.meshgrid(grid, grid, indexing='ij')
  images = np.zeros((n, size, size, channels), np.float32)
  for i in range(n):
    for c in range(channels):
      fy, fx, phase = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
      images[i, :, :, c] = 0.5 + 0.4 * np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
  return images


def test_resize_methods_are_documented_in_one_line():
  for name in ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos3', 'lanczos5'):
    assert name in transforms.RESIZE_METHODS
  for name, why in transforms.RESIZE_METHODS.items():
    assert why.strip() and '\n' not in why, name
  assert set(transforms.ANTIALIASED_METHODS) <= set(transforms.RESIZE_METHODS)


@pytest.mark.parametrize('method', sorted(transforms.RESIZE_METHODS))
@pytest.mark.parametrize('antialias', [True, False])
@pytest.mark.parametrize('size', [12, 16])
def test_every_method_gives_target_shape_and_keeps_mean(method, antialias, size):
  images = _smooth_images()
  out = transforms.resize(images, size, method, antialias)
  assert out.shape == (2, size, size, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=0.01)


def test_area_8_to_4_is_2x2_average_pooling():
  images = np.random.default_rng(1).random((3, 8, 8, 2)).astype(np.float32)
  pooled = images.reshape(3, 4, 2, 4, 2, 2).mean(axis=(2, 4))
  np.testing.assert_allclose(transforms.resize(images, 4, 'area', False), pooled, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('in_size,out_size', [(10, 7), (32, 12), (8, 3)])
def test_area_non_integer_factor_matches_exact_area_average(in_size, out_size):
  matrix = transforms.area_matrix(in_size, out_size)
  np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)  # each output is an average
  np.testing.assert_allclose(matrix.sum(axis=0), out_size / in_size, atol=1e-12)  # each input counts equally
  images = np.random.default_rng(2).random((2, in_size, in_size, 1)).astype(np.float32)
  reference = jax.image.resize(images, (2, out_size, out_size, 1), 'area')  # independent implementation
  np.testing.assert_allclose(transforms.resize(images, out_size, 'area', False), reference, atol=1e-5)


def test_antialias_changes_filtered_methods_only():
  images = np.random.default_rng(3).random((1, 32, 32, 1)).astype(np.float32)
  for method in transforms.RESIZE_METHODS:
    with_aa = transforms.resize(images, 8, method, True)
    without_aa = transforms.resize(images, 8, method, False)
    if method in transforms.ANTIALIASED_METHODS:
      assert not np.allclose(with_aa, without_aa), method
      assert with_aa.std() < without_aa.std(), method  # low-pass filtering removes noise energy
    else:
      np.testing.assert_array_equal(with_aa, without_aa)


def test_resize_in_chunks_matches_one_pass(monkeypatch):
  images = _smooth_images(n=5, size=16)
  whole = transforms.resize(images, 8, 'bilinear', True)
  monkeypatch.setattr(transforms, '_CHUNK_BYTES', 16 * 16 * 3 * 4 * 2)  # two images per chunk
  np.testing.assert_allclose(transforms.resize(images, 8, 'bilinear', True), whole, atol=1e-6)


def test_center_crop_keeps_the_center():
  images = np.arange(2 * 10 * 10 * 1).reshape(2, 10, 10, 1)
  cropped = transforms.center_crop(images, 0.6)
  assert cropped.shape == (2, 6, 6, 1)
  np.testing.assert_array_equal(cropped, images[:, 2:8, 2:8, :])
  assert transforms.center_crop(images, 1.0).shape == images.shape
  with pytest.raises(ConfigError, match='center_crop'):
    transforms.center_crop(images, 0.0)


def test_scale_to_unit_range():
  scaled = transforms.scale_to_unit(np.array([0, 51, 255], np.uint8))
  assert scaled.dtype == np.float32
  np.testing.assert_allclose(scaled, [0.0, 0.2, 1.0], atol=1e-7)


def test_normalization_gives_zero_mean_unit_std_on_training_data():
  rng = np.random.default_rng(4)
  channels = [rng.integers(0, 100, (50, 8, 8)), rng.integers(100, 256, (50, 8, 8))]
  train = np.stack(channels, axis=-1).astype(np.uint8)
  stats = transforms.normalization_stats(train)
  assert len(stats.mean) == len(stats.std) == 2
  out = transforms.preprocess(train, _input_cfg(normalize=True), stats)
  np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_normalization_stats_in_chunks_match_numpy(monkeypatch):
  train = np.random.default_rng(5).integers(0, 256, (9, 4, 4, 3), dtype=np.uint8)
  monkeypatch.setattr(transforms, '_CHUNK_BYTES', 4 * 4 * 3 * 4 * 2)
  stats = transforms.normalization_stats(train)
  np.testing.assert_allclose(stats.mean, (train / 255.0).mean(axis=(0, 1, 2)), rtol=1e-6)
  np.testing.assert_allclose(stats.std, (train / 255.0).std(axis=(0, 1, 2)), rtol=1e-6)


def test_preprocess_crops_then_resizes_and_reports_its_shape():
  images = np.random.default_rng(6).integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
  cfg = _input_cfg(resolution=4, center_crop=0.5)
  out = transforms.preprocess(images, cfg, None)
  assert out.shape == (3, 4, 4, 1) == (3, *transforms.output_shape((16, 16, 1), cfg))
  expected = (images[:, 4:12, 4:12, :] / 255.0).reshape(3, 4, 2, 4, 2, 1).mean(axis=(2, 4))
  np.testing.assert_allclose(out, expected, atol=1e-6)
  native = transforms.preprocess(images, _input_cfg(), None)
  np.testing.assert_allclose(native, images / 255.0, atol=1e-7)


def test_upsampling_is_a_config_error():
  images = np.zeros((1, 8, 8, 1), np.uint8)
  with pytest.raises(ConfigError, match=r'config\.input\.resolution=9 .*8x8'):
    transforms.preprocess(images, _input_cfg(resolution=9), None)
  with pytest.raises(ConfigError, match=r'config\.input\.resolution=5 .*center_crop'):
    transforms.output_shape((8, 8, 1), _input_cfg(resolution=5, center_crop=0.5))


def test_unknown_resize_method_is_a_config_error():
  with pytest.raises(ConfigError, match=r"config\.input\.resize='box'"):
    transforms.preprocess(np.zeros((1, 8, 8, 1), np.uint8), _input_cfg(resolution=4, resize='box'), None)


def test_method_label():
  assert transforms.method_label('bilinear', True) == 'bilinear+aa'
  assert transforms.method_label('bilinear', False) == 'bilinear'
  assert transforms.method_label('area', True) == 'area'
  assert transforms.method_label('nearest', True) == 'nearest'
