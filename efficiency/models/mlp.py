"""MLP: a multilayer perceptron on a fixed-size average-pooled copy of the image.

An MLP's first layer has one weight per input pixel, so to accept any input
resolution the image is first brought to a fixed `grid` x `grid` by adaptive
average pooling (`layers.adaptive_avg_pool`: each output pixel averages a bin of
input pixels; bins repeat pixels when the input is smaller than the grid). The
parameter count therefore does not depend on the resolution, while the
information the MLP sees does. With the default grid=8 an 8x8 input passes
through unchanged. (Global average pooling alone would throw away all spatial
layout, which is the only thing an MLP on pixels has to work with.)

Layout: pool to grid x grid -> flatten -> `depth` hidden layers of `width` units
with ReLU -> linear classifier. No normalisation layers, so `train()`/`eval()`
change nothing.
"""

from __future__ import annotations

import jax
from flax import nnx

from efficiency.models import layers


class MLP(nnx.Module):
  """`depth` hidden layers of `width` ReLU units on the image pooled to `grid` x `grid`."""

  INFO = dict(
      title='Multilayer perceptron (MLP)',
      paper='Rumelhart et al. 1986, Learning representations by back-propagating errors',
      citation='D. E. Rumelhart, G. E. Hinton, R. J. Williams. Learning representations by '
               'back-propagating errors. Nature 323:533-536, 1986.',
      description='Image adaptively average-pooled to a fixed grid, flattened, depth hidden '
                  'dense layers of width ReLU units, linear classifier.')
  WIDTH_RANGE = (1, 4096)
  DEPTH_RANGE = (1, 64)
  KWARG_RANGES = {'grid': (1, 256)}

  def __init__(self, *, in_channels: int, num_classes: int, width: int, depth: int,
               grid: int = 8, rngs: nnx.Rngs):
    self.grid = grid
    self.hidden = nnx.List()
    features = grid * grid * in_channels
    for _ in range(depth):
      self.hidden.append(layers.dense(features, width, rngs=rngs))
      features = width
    self.head = layers.dense(features, num_classes, relu_follows=False, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.adaptive_avg_pool(x, self.grid)
    x = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      x = nnx.relu(layer(x))
    return self.head(x)
