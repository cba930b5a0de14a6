"""The config-driven input pipeline: scale to [0, 1] -> center crop -> resize -> normalize.

`preprocess(images, config.input, stats)` turns uint8 NHWC images into the
float32 NHWC array a model sees. Resizing only ever downsamples (or keeps the
size): a resolution above the (cropped) native size is a ConfigError.

Resize methods: 'area' is an exact area-weighted average computed with one
resampling matrix per axis (like OpenCV INTER_AREA, also for non-integer
factors); the others are `jax.image.resize`. `antialias` widens the filter of
bilinear, bicubic and the lanczos methods to cover every source pixel when
downsampling; 'nearest' has no filter to widen and 'area' is alias-free by
construction, so both ignore it.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from efficiency.errors import ConfigError

RESIZE_METHODS: dict[str, str] = {
    'nearest': 'Cheapest: copies one source pixel per output pixel; aliases badly, the floor to beat.',
    'bilinear': 'Fast common default (triangle filter); with antialias it averages every covered pixel.',
    'bicubic': 'Sharper than bilinear at a little more cost; the usual choice when fine detail matters.',
    'area': 'Exact average of the covered source pixels (OpenCV INTER_AREA): alias-free, no ringing.',
    'lanczos3': 'Windowed sinc with 3 lobes: the sharpest common low-pass filter, slight ringing at edges.',
    'lanczos5': 'Windowed sinc with 5 lobes: closest to an ideal low-pass, most ringing and cost.',
}
ANTIALIASED_METHODS = ('bilinear', 'bicubic', 'lanczos3', 'lanczos5')
_JAX_METHODS = {'nearest': 'nearest', 'bilinear': 'linear', 'bicubic': 'cubic',
                'lanczos3': 'lanczos3', 'lanczos5': 'lanczos5'}
_CHUNK_BYTES = 64 * 2**20  # float32 input bytes processed at once

_jax_resize = jax.jit(jax.image.resize, static_argnames=('shape', 'method', 'antialias'))


@dataclasses.dataclass(frozen=True)
class NormStats:
  """Per-channel mean and standard deviation of [0, 1]-scaled training images."""
  mean: tuple[float, ...]
  std: tuple[float, ...]


def method_label(resize: str, antialias: bool) -> str:
  """A short legend label: 'bilinear+aa', 'bilinear', 'area' (antialias only where it applies)."""
  return f'{resize}+aa' if antialias and resize in ANTIALIASED_METHODS else resize


def _check_method(method: str) -> None:
  if method not in RESIZE_METHODS:
    raise ConfigError(f'config.input.resize={method!r} is not allowed: expected one of '
                      + ', '.join(sorted(RESIZE_METHODS)) + '.')


def _chunk_size(image_shape: tuple[int, ...]) -> int:
  return max(1, _CHUNK_BYTES // (4 * int(np.prod(image_shape))))


def scale_to_unit(images_uint8: np.ndarray) -> np.ndarray:
  """uint8 images -> float32 in [0, 1]."""
  return np.asarray(images_uint8, np.float32) / np.float32(255.0)


def _crop_box(height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
  if not 0.0 < fraction <= 1.0:
    raise ConfigError(f'config.input.center_crop={fraction!r} is not allowed: expected a number in (0, 1].')
  crop_h, crop_w = max(1, round(height * fraction)), max(1, round(width * fraction))
  top, left = (height - crop_h) // 2, (width - crop_w) // 2
  return top, left, crop_h, crop_w


def center_crop(images: np.ndarray, fraction: float) -> np.ndarray:
  """Keeps the central `fraction` of each side of NHWC images (a view; 1.0 keeps all)."""
  top, left, crop_h, crop_w = _crop_box(images.shape[1], images.shape[2], fraction)
  return images[:, top:top + crop_h, left:left + crop_w, :]


def area_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out_size, in_size) weights: output pixel i averages [i, i+1) * in/out of the input axis."""
  scale = in_size / out_size
  starts = np.arange(out_size)[:, None] * scale
  pixels = np.arange(in_size)[None, :]
  overlap = np.minimum(starts + scale, pixels + 1) - np.maximum(starts, pixels)
  return np.clip(overlap, 0.0, None) / scale


def _resize_chunk(images: np.ndarray, size: int, method: str, antialias: bool) -> np.ndarray:
  if method == 'area':
    rows = area_matrix(images.shape[1], size).astype(np.float32)
    cols = area_matrix(images.shape[2], size).astype(np.float32)
    return np.einsum('oh,nhwc,pw->nopc', rows, images, cols, optimize=True).astype(np.float32)
  shape = (images.shape[0], size, size, images.shape[3])
  return np.asarray(_jax_resize(images, shape=shape, method=_JAX_METHODS[method], antialias=antialias))


def resize(images: np.ndarray, size: int, method: str, antialias: bool) -> np.ndarray:
  """Resizes NHWC images to (N, size, size, C) float32 with a method of RESIZE_METHODS."""
  _check_method(method)
  images = np.asarray(images, np.float32)
  if images.shape[1:3] == (size, size):
    return images
  step = _chunk_size(images.shape[1:])
  out = np.empty((images.shape[0], size, size, images.shape[3]), np.float32)
  for start in range(0, images.shape[0], step):
    out[start:start + step] = _resize_chunk(images[start:start + step], size, method, antialias)
  return out


def normalization_stats(train_images_uint8: np.ndarray) -> NormStats:
  """Per-channel mean and std of the native training images scaled to [0, 1]."""
  channels = train_images_uint8.shape[-1]
  total, total_sq, count = np.zeros(channels), np.zeros(channels), 0
  step = _chunk_size(train_images_uint8.shape[1:])
  for start in range(0, train_images_uint8.shape[0], step):
    pixels = scale_to_unit(train_images_uint8[start:start + step]).reshape(-1, channels).astype(np.float64)
    total += pixels.sum(axis=0)
    total_sq += np.square(pixels).sum(axis=0)
    count += pixels.shape[0]
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
  std = np.where(std > 1e-6, std, 1.0)  # a constant channel is only centred
  return NormStats(mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std))


def output_shape(image_shape: tuple[int, int, int], input_cfg) -> tuple[int, int, int]:
  """The (H, W, C) `preprocess` produces from native `image_shape`; ConfigError if not allowed."""
  height, width, channels = image_shape
  _check_method(input_cfg.resize)
  _, _, crop_h, crop_w = _crop_box(height, width, input_cfg.center_crop)
  resolution = input_cfg.resolution
  if resolution is None:
    return crop_h, crop_w, channels
  if resolution > min(crop_h, crop_w):
    cropped = f', {crop_h}x{crop_w} after center_crop={input_cfg.center_crop}' if (crop_h, crop_w) != (
        height, width) else ''
    raise ConfigError(f'config.input.resolution={resolution} is not allowed: expected at most '
                      f'{min(crop_h, crop_w)}, the native image size is {height}x{width}{cropped} '
                      '(upsampling is not a downsampling study).')
  return resolution, resolution, channels


def preprocess(images_uint8: np.ndarray, input_cfg, stats: NormStats | None) -> np.ndarray:
  """uint8 NHWC -> float32 NHWC: scale to [0, 1], center crop, resize, normalize (per `config.input`)."""
  out_h, out_w, channels = output_shape(tuple(images_uint8.shape[1:]), input_cfg)
  if input_cfg.normalize:
    if stats is None or len(stats.mean) != channels:
      raise ValueError(f'preprocess with config.input.normalize=True needs NormStats for {channels} '
                       f'channels, got {stats}.')
    mean = np.asarray(stats.mean, np.float32)
    inv_std = np.float32(1.0) / np.asarray(stats.std, np.float32)
  out = np.empty((images_uint8.shape[0], out_h, out_w, channels), np.float32)
  step = _chunk_size(images_uint8.shape[1:])
  for start in range(0, images_uint8.shape[0], step):
    chunk = center_crop(scale_to_unit(images_uint8[start:start + step]), input_cfg.center_crop)
    if input_cfg.resolution is not None:
      chunk = resize(chunk, input_cfg.resolution, input_cfg.resize, input_cfg.antialias)
    if input_cfg.normalize:
      chunk = (chunk - mean) * inv_std
    out[start:start + step] = chunk
  return out
