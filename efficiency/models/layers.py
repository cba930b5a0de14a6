"""The one place the model families create convolutions, dense layers and norms.

Every family builds its layers through these factories, so a different
convolution implementation (or initializer, or norm) can be swapped in here
without touching the families. Inputs are NHWC; convolutions use SAME padding,
so a stride-2 layer works on any spatial size down to 1x1 (output ceil(H/2)).

Convolutions are `nnx.Conv` modules (same parameters and checkpoints) whose
arithmetic runs through `fast_conv.conv_general_dilated`: the same function as
`lax.conv_general_dilated`, arranged so XLA:CPU avoids its slow depthwise
convolutions, 1x1 kernel gradients and windows larger than the image. FLOP
counts are unchanged except for depthwise layers (2*k*k - 1 per output element
instead of 2*k*k) and images smaller than the window (the adds that sum its
kernel rows or taps); see `fast_conv`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from efficiency.models import batch_norm as batch_norm_lib
from efficiency.models import fast_conv, fusion_fence, host_init

# He et al. 2015 initialisation, suited to ReLU networks; drawn on the host (see host_init).
_KERNEL_INIT = host_init.he_normal
# Running averages settle within ~20 steps, which matters for short runs on small datasets.
BATCH_NORM_MOMENTUM = 0.9


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
         groups: int = 1, *, use_bias: bool = False, rngs: nnx.Rngs) -> nnx.Conv:
  """A square `kernel_size` convolution with SAME padding; `groups=in_channels` is depthwise."""
  return nnx.Conv(in_channels, out_channels, kernel_size=(kernel_size, kernel_size),
                  strides=(stride, stride), padding='SAME', feature_group_count=groups,
                  use_bias=use_bias, kernel_init=_KERNEL_INIT,
                  conv_general_dilated=fast_conv.conv_general_dilated, rngs=rngs)


def use_lax_convolutions(model: nnx.Module) -> nnx.Module:
  """`model` with every `nnx.Conv` computing through plain `lax.conv_general_dilated`.

  That is `nnx.Conv`'s default: the reference form the benchmarks' "before"
  side and the tests compare `fast_conv` against. Parameters are untouched.
  """
  for _, module in nnx.iter_modules(model):
    if isinstance(module, nnx.Conv):
      module.conv_general_dilated = jax.lax.conv_general_dilated
  return model


def dense(in_features: int, out_features: int, *, relu_follows: bool = True,
          rngs: nnx.Rngs) -> nnx.Linear:
  """A fully connected layer; `relu_follows=False` (classifier heads) uses LeCun init."""
  kernel_init = _KERNEL_INIT if relu_follows else host_init.lecun_normal
  return nnx.Linear(in_features, out_features, kernel_init=kernel_init, rngs=rngs)


def batch_norm(num_features: int, *, closed_form_gradient: bool = False,
               rngs: nnx.Rngs) -> nnx.BatchNorm:
  """BatchNorm over the channel axis; starts in training mode (see `model.train()/eval()`).

  `closed_form_gradient=True`: `efficiency.models.batch_norm.BatchNorm`, the same
  function and state with a hand-written training gradient, faster in the plain
  CNN and slower in MobileNet and ResNet (benchmarks/RESULTS.md).
  """
  cls = batch_norm_lib.BatchNorm if closed_form_gradient else nnx.BatchNorm
  return cls(num_features, momentum=BATCH_NORM_MOMENTUM, epsilon=1e-5, rngs=rngs)


SINGLE_CHANNEL_FORMS = fast_conv.SINGLE_CHANNEL_FORMS + ('shifted_for_training',)


class ConvBNReLU(nnx.Module):
  """conv -> BatchNorm -> ReLU, or conv (with bias) -> ReLU when `use_batch_norm=False`.

  `single_channel` picks how a conv of a one-channel input runs (see
  `fast_conv`): 'conv' (lax's convolution), 'shifted' (shifted multiply-adds)
  or 'shifted_for_training' (shifted while BatchNorm uses batch statistics,
  lax's convolution in evaluation mode). The function and parameters are the
  same in every form; only the speed differs, and which form wins depends on
  the model around it (benchmarks/RESULTS.md). `closed_form_gradient`: see
  `batch_norm`. `fence_in_training=True` passes the output through
  `fusion_fence` while BatchNorm uses batch statistics, so XLA stores it once
  instead of recomputing BatchNorm and ReLU inside the next layer's gradient
  transposes (same values; faster for the plain CNN only).
  """

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
               groups: int = 1, *, use_batch_norm: bool = True, single_channel: str = 'conv',
               closed_form_gradient: bool = False, fence_in_training: bool = False,
               rngs: nnx.Rngs):
    if single_channel not in SINGLE_CHANNEL_FORMS:
      raise ValueError(f'single_channel {single_channel!r} is not one of {SINGLE_CHANNEL_FORMS}')
    self.conv = conv(in_channels, out_channels, kernel_size, stride, groups,
                     use_bias=not use_batch_norm, rngs=rngs)
    self.norm = (batch_norm(out_channels, closed_form_gradient=closed_form_gradient, rngs=rngs)
                 if use_batch_norm else None)
    self.single_channel = single_channel
    self.fence_in_training = fence_in_training

  def _training(self) -> bool:
    return self.norm is not None and not self.norm.use_running_average

  def _single_channel_form(self) -> str:
    if self.single_channel != 'shifted_for_training':
      return self.single_channel
    return 'shifted' if self._training() else 'conv'

  def __call__(self, x: jax.Array) -> jax.Array:
    with fast_conv.single_channel_form(self._single_channel_form()):
      x = self.conv(x)
    if self.norm is not None:
      x = self.norm(x)
    x = nnx.relu(x)
    return fusion_fence.fusion_fence(x) if self.fence_in_training and self._training() else x


def global_avg_pool(x: jax.Array, *, as_matmul: bool = False) -> jax.Array:
  """(N, H, W, C) -> (N, C): the mean over all spatial positions.

  `as_matmul=True` computes the same mean as a batched matrix product with a
  constant 1/(H*W) vector (2 FLOPs per input element where the reduction
  counts 1). Measured (benchmarks/RESULTS.md), XLA:CPU in jaxlib 0.10 runs
  MobileNet and ResNet faster that way: a reduction after a pointwise conv or
  residual add pulls the whole last block into one slow YNNPACK fusion. The
  plain CNN is faster with the reduction, which lets its whole forward run
  as one fusion, so it keeps the default.
  """
  if not as_matmul:
    return jnp.mean(x, axis=(1, 2))
  n, h, w, c = x.shape
  weights = jnp.full((n, h * w), 1.0 / (h * w), x.dtype)
  return jax.lax.dot_general(x.reshape(n, h * w, c), weights, (((1,), (1,)), ((0,), (0,))))


@functools.lru_cache(maxsize=256)
def _adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
  # Row i averages input positions [floor(i*in/out), ceil((i+1)*in/out)), as in
  # PyTorch's AdaptiveAvgPool; when in_size < out_size, input positions repeat.
  matrix = np.zeros((out_size, in_size), np.float32)
  for i in range(out_size):
    start = (i * in_size) // out_size
    stop = -((-(i + 1) * in_size) // out_size)
    matrix[i, start:stop] = 1.0 / (stop - start)
  return matrix


def adaptive_avg_pool(x: jax.Array, grid: int) -> jax.Array:
  """(N, H, W, C) -> (N, grid, grid, C) by averaging bins; the identity when H = W = grid."""
  _, height, width, _ = x.shape
  if height == grid and width == grid:
    return x
  rows = jnp.asarray(_adaptive_pool_matrix(height, grid))
  cols = jnp.asarray(_adaptive_pool_matrix(width, grid))
  return jnp.einsum('ih,nhwc,jw->nijc', rows, x, cols)
