"""`nnx.BatchNorm` with a hand-written training gradient and a two-pass evaluation form: same
function, state and checkpoints.

In training mode BatchNorm normalises with the batch's own statistics, so its
gradient runs through the mean and the variance. Autodiff of `nnx.BatchNorm`
leaves XLA several separate reductions and elementwise passes over the
activations; the closed form below needs one pass for two sums and one for the
input gradient:

  xhat = (x - mean) * rstd,   rstd = 1 / sqrt(var + eps)
  dbias = sum(dy),   dscale = sum(dy * xhat)
  dx = scale * rstd * (dy - dbias / m - xhat * dscale / m)

(sums over the m = N*H*W positions of each channel). Measured
(benchmarks/RESULTS.md): the plain CNN's training step takes 0.91-0.98x the
time at 8x8, but MobileNet's 1.28-1.34x (XLA fuses autodiff's form there
better), so layers use it where a family asks for it. The forward is
`nnx.BatchNorm`'s arithmetic (fast variance E[x^2] - E[x]^2, clipped at 0),
and masks, named axes and layers without scale or bias go to `nnx.BatchNorm`
itself.

In evaluation mode the layer is an affine map per channel, computed as
x * k + (bias - mean * k) with k = scale / sqrt(var + eps): one multiply and
one add per element where `nnx.BatchNorm` subtracts, multiplies and adds
(equal within float rounding; the counted FLOPs are those two). The plain
CNN's batch-64 forward, one YNNPACK fusion, took 0.96x the time
(benchmarks/RESULTS.md); MobileNet's 1.02x, so it stays a per-family choice
like the gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax


def _batch_stats(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  mean = jnp.mean(x, axes)
  var = jnp.maximum(0.0, jnp.mean(x * x, axes) - mean * mean)
  return mean, var


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def normalize_with_batch_stats(x: jax.Array, scale: jax.Array, bias: jax.Array,
                               epsilon: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(y, mean, var) of BatchNorm over every axis but the last; mean and var carry no gradient."""
  return _forward(x, scale, bias, epsilon)[0]


def _forward(x, scale, bias, epsilon):
  mean, var = _batch_stats(x, tuple(range(x.ndim - 1)))
  rstd = lax.rsqrt(var + epsilon)
  y = (x - mean) * (rstd * scale) + bias
  return (y, mean, var), (x, mean, rstd, scale)


def _backward(epsilon, saved, cotangents):
  del epsilon
  x, mean, rstd, scale = saved
  dy = cotangents[0]   # the statistics' cotangents are zero: they only feed stop_gradient'ed state
  axes = tuple(range(x.ndim - 1))
  count = x.size // x.shape[-1]
  xhat = (x - mean) * rstd
  dbias = jnp.sum(dy, axes)
  dscale = jnp.sum(dy * xhat, axes)
  dx = (rstd * scale) * (dy - dbias / count - xhat * (dscale / count))
  return dx, dscale, dbias


normalize_with_batch_stats.defvjp(_forward, _backward)


class BatchNorm(nnx.BatchNorm):
  """`nnx.BatchNorm` with `normalize_with_batch_stats`'s closed-form gradient in training mode
  and the two-pass affine map in evaluation mode."""

  def __call__(self, x, use_running_average: bool | None = None, *, mask=None):
    running = self.use_running_average if use_running_average is None else use_running_average
    plain = (mask is not None or self.axis_name is not None
             or self.scale is None or self.bias is None or not self.use_fast_variance
             or self.axis not in (-1, x.ndim - 1) or x.dtype != jnp.float32
             or self.dtype not in (None, jnp.float32))
    if plain:
      return super().__call__(x, use_running_average, mask=mask)
    if running:
      k = self.scale[...] * lax.rsqrt(self.var[...] + self.epsilon)
      return x * k + (self.bias[...] - self.mean[...] * k)
    y, mean, var = normalize_with_batch_stats(x, self.scale[...], self.bias[...], self.epsilon)
    self.mean[...] = lax.stop_gradient(self.momentum * self.mean[...] + (1 - self.momentum) * mean)
    self.var[...] = lax.stop_gradient(self.momentum * self.var[...] + (1 - self.momentum) * var)
    return y
