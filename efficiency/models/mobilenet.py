"""MobileNet: MobileNet(v1)-style depthwise-separable convolutions (Howard et al. 2017).

Layout: a 3x3 stem conv with `width` channels (stride 1: inputs here are small;
on one-channel inputs it runs as shifted multiply-adds, see `fast_conv`),
then `depth` separable blocks, global average pooling and a linear classifier.
A separable block is a depthwise 3x3 conv (`feature_group_count=channels`) ->
BN -> ReLU -> pointwise 1x1 conv -> BN -> ReLU.

Stride schedule (the CNN's rule, counting the stem as layer 0): blocks 0, 2, 4, ...
have a stride-2 depthwise conv and a pointwise conv that doubles the channels,
until `max_downsamples` blocks have done so; the other blocks keep stride 1 and
the channels. So depth=3, width=32 is stem32 -> sep64/2 -> sep64 -> sep128/2.

Depthwise convs do few FLOPs but are memory-bound, so this is the family where
FLOPs and measured latency disagree. SAME padding makes every input size work.

BatchNorm: the model starts in training mode (batch statistics, running averages
updated); call `model.eval()` before evaluation or measurement and `model.train()`
to switch back.
"""

from __future__ import annotations

import jax
from flax import nnx

from efficiency.models import layers
from efficiency.models.cnn import conv_plan


class SeparableBlock(nnx.Module):
  """Depthwise 3x3 (with the stride) then pointwise 1x1, each with BatchNorm and ReLU."""

  def __init__(self, in_channels: int, out_channels: int, stride: int, *, rngs: nnx.Rngs):
    self.depthwise = layers.ConvBNReLU(in_channels, in_channels, 3, stride, groups=in_channels,
                                       rngs=rngs)
    self.pointwise = layers.ConvBNReLU(in_channels, out_channels, 1, 1, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.pointwise(self.depthwise(x))


class MobileNet(nnx.Module):
  """MobileNet v1 style: a `width`-channel stem and `depth` depthwise-separable blocks."""

  INFO = dict(
      title='MobileNet (depthwise-separable convolutions)',
      paper='Howard et al. 2017, MobileNets: Efficient convolutional neural networks for mobile '
            'vision applications',
      citation='A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, '
               'H. Adam. MobileNets: Efficient convolutional neural networks for mobile vision '
               'applications. arXiv:1704.04861, 2017.',
      description='3x3 stem, depth depthwise-separable blocks (depthwise 3x3 + pointwise 1x1, '
                  'BatchNorm, ReLU), stride 2 and doubled channels at every other block, global '
                  'average pooling.')
  WIDTH_RANGE = (1, 1024)
  DEPTH_RANGE = (1, 64)
  KWARG_RANGES = {'max_downsamples': (0, 16)}

  def __init__(self, *, in_channels: int, num_classes: int, width: int, depth: int,
               max_downsamples: int = 3, rngs: nnx.Rngs):
    self.stem = layers.ConvBNReLU(in_channels, width, 3, 1, single_channel='shifted', rngs=rngs)
    self.blocks = nnx.List()
    channels = width
    plan = conv_plan(width, depth, max_downsamples, first_downsample=0)
    for out_channels, stride in plan:
      self.blocks.append(SeparableBlock(channels, out_channels, stride, rngs=rngs))
      channels = out_channels
    self.head = layers.dense(channels, num_classes, relu_follows=False, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.stem(x)
    for block in self.blocks:
      x = block(x)
    return self.head(layers.global_avg_pool(x, as_matmul=True))
