"""CNN: a plain stack of 3x3 convolutions, global average pooling and a linear classifier.

The base model of the default (scikit-learn digits, 8x8x1) dataset.

Channel and downsampling rule, for conv layer i = 0 .. depth-1:
  * layer 0 has `width` channels and stride 1;
  * every odd layer (1, 3, 5, ...) has stride 2 and doubles the channels, until
    `max_downsamples` layers have done so; all other layers keep the channels
    and use stride 1.
So depth=3, width=32 is conv32 -> conv64/2 -> conv64 -> global pool -> dense.
Each conv is followed by BatchNorm (unless `batch_norm=False`, then the conv has
a bias) and ReLU. SAME padding makes every input size from 1x1 up work.

BatchNorm: the model starts in training mode (batch statistics, running averages
updated); call `model.eval()` before evaluation or measurement and `model.train()`
to switch back.
"""

from __future__ import annotations

import jax
from flax import nnx

from efficiency.models import layers


def conv_plan(width: int, depth: int, max_downsamples: int,
              first_downsample: int = 1) -> list[tuple[int, int]]:
  """(out_channels, stride) of each layer under the rule in the module docstring.

  Layers first_downsample, first_downsample + 2, ... downsample (MobileNet passes 0).
  """
  plan, channels, downsamples = [], width, 0
  for i in range(depth):
    stride = 1
    if i >= first_downsample and (i - first_downsample) % 2 == 0 and downsamples < max_downsamples:
      stride, channels, downsamples = 2, channels * 2, downsamples + 1
    plan.append((channels, stride))
  return plan


class CNN(nnx.Module):
  """Plain convolutional network: `depth` 3x3 convs starting at `width` channels."""

  INFO = dict(
      title='Plain convolutional network',
      paper='LeCun et al. 1998, Gradient-based learning applied to document recognition',
      citation='Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to '
               'document recognition. Proceedings of the IEEE 86(11):2278-2324, 1998.',
      description='depth 3x3 conv layers (BatchNorm, ReLU), channels doubling with a stride-2 '
                  'conv at every odd layer, global average pooling, linear classifier.')
  WIDTH_RANGE = (1, 1024)
  DEPTH_RANGE = (1, 64)
  KWARG_RANGES = {'max_downsamples': (0, 16)}

  def __init__(self, *, in_channels: int, num_classes: int, width: int, depth: int,
               batch_norm: bool = True, max_downsamples: int = 3, rngs: nnx.Rngs):
    self.layers = nnx.List()
    channels = in_channels
    for out_channels, stride in conv_plan(width, depth, max_downsamples):
      # Speed choices measured for this family (layers.ConvBNReLU); the function is the same.
      self.layers.append(layers.ConvBNReLU(channels, out_channels, 3, stride,
                                           use_batch_norm=batch_norm,
                                           single_channel='shifted_for_training',
                                           closed_form_gradient=True, fence_in_training=True,
                                           rngs=rngs))
      channels = out_channels
    self.head = layers.dense(channels, num_classes, relu_follows=False, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for layer in self.layers:
      x = layer(x)
    return self.head(layers.global_avg_pool(x))
