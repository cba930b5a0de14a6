"""ResNet: CIFAR-style residual network of basic blocks (He et al. 2016, section 4.2).

Layout: a 3x3 stem conv with `width` channels, then `stages` stages (3 by default)
of `depth` basic blocks each, with width, 2*width, 4*width, ... channels. The
first block of every stage after the first has stride 2; where a block changes
the shape, its shortcut is a 1x1 conv + BatchNorm (projection, option B), else
the identity. Then global average pooling and a linear classifier. depth=3 is
ResNet-20, depth=9 ResNet-56 (6*depth + 2 weighted layers for 3 stages).

Basic block: conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, -> ReLU.
SAME padding makes every input size from 1x1 up work.

In training mode the stem's and every block's output pass through
`fusion_fence` (stored once, so XLA does not recompute BatchNorm, the residual
add and ReLU inside the transposes before the next kernel gradients): the
training step took 0.81x the time at 28x28 and 0.86x at 8x8 on an Intel Xeon
(benchmarks/RESULTS.md). Same values and gradients.

BatchNorm: the model starts in training mode (batch statistics, running averages
updated); call `model.eval()` before evaluation or measurement and `model.train()`
to switch back.
"""

from __future__ import annotations

import jax
from flax import nnx

from efficiency.models import fusion_fence, layers


class BasicBlock(nnx.Module):
  """Two 3x3 convs with BatchNorm and a shortcut (identity or 1x1 projection)."""

  def __init__(self, in_channels: int, out_channels: int, stride: int, *, rngs: nnx.Rngs):
    self.conv1 = layers.conv(in_channels, out_channels, 3, stride, rngs=rngs)
    self.norm1 = layers.batch_norm(out_channels, rngs=rngs)
    self.conv2 = layers.conv(out_channels, out_channels, 3, 1, rngs=rngs)
    self.norm2 = layers.batch_norm(out_channels, rngs=rngs)
    projects = stride != 1 or in_channels != out_channels
    self.shortcut_conv = (layers.conv(in_channels, out_channels, 1, stride, rngs=rngs)
                          if projects else None)
    self.shortcut_norm = layers.batch_norm(out_channels, rngs=rngs) if projects else None

  def __call__(self, x: jax.Array) -> jax.Array:
    shortcut = x
    if self.shortcut_conv is not None:
      shortcut = self.shortcut_norm(self.shortcut_conv(x))
    y = nnx.relu(self.norm1(self.conv1(x)))
    y = self.norm2(self.conv2(y))
    y = nnx.relu(y + shortcut)
    return y if self.norm1.use_running_average else fusion_fence.fusion_fence(y)


class ResNet(nnx.Module):
  """CIFAR-style ResNet: `stages` stages of `depth` basic blocks, `width` stem channels."""

  INFO = dict(
      title='Residual network (ResNet)',
      paper='He et al. 2016, Deep residual learning for image recognition',
      citation='K. He, X. Zhang, S. Ren, J. Sun. Deep residual learning for image recognition. '
               'CVPR 2016, pp. 770-778.',
      description='CIFAR-style ResNet: 3x3 stem, 3 stages of depth basic blocks (width, 2*width, '
                  '4*width channels, stride 2 between stages), BatchNorm, global average pooling.')
  WIDTH_RANGE = (1, 1024)
  DEPTH_RANGE = (1, 64)
  KWARG_RANGES = {'stages': (1, 6)}

  def __init__(self, *, in_channels: int, num_classes: int, width: int, depth: int,
               stages: int = 3, rngs: nnx.Rngs):
    self.stem = layers.ConvBNReLU(in_channels, width, 3, 1, fence_in_training=True, rngs=rngs)
    self.blocks = nnx.List()
    channels = width
    for stage in range(stages):
      out_channels = width * 2**stage
      for block in range(depth):
        stride = 2 if stage > 0 and block == 0 else 1
        self.blocks.append(BasicBlock(channels, out_channels, stride, rngs=rngs))
        channels = out_channels
    self.head = layers.dense(channels, num_classes, relu_follows=False, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.stem(x)
    for block in self.blocks:
      x = block(x)
    return self.head(layers.global_avg_pool(x, as_matmul=True))
