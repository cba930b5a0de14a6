"""A drop-in `conv_general_dilated` for `nnx.Conv` that avoids XLA:CPU's slow convolution paths.

`nnx.Conv(..., conv_general_dilated=fast_conv.conv_general_dilated)` computes
the same function as the default `lax.conv_general_dilated` (to float
rounding) with the same parameters. These kinds of 2D NHWC float convolution
run differently:

* depthwise (feature_group_count = input channels = output channels): a sum
  of k*k shifted, strided slices of the padded input, each times one kernel
  tap. XLA fuses it into one loop, forward and backward (autodiff of slices,
  multiplies and adds), where XLA:CPU's grouped convolution and its gradients
  take 20-40x longer. Counted cost (the jaxpr walk and XLA agree): the first
  tap is a multiply, every further tap a multiply and an add, so 2*k*k - 1
  FLOPs per output element, taps on padding included, where a convolution is
  counted as 2*k*k per output element (dense) or 2 per tap on real input (XLA).
* one input channel (an image model's first layer on grey images), when
  the caller asks for it (`single_channel='shifted'`, or inside
  `single_channel_form('shifted')`): the forward is the same
  sum of k*k shifted slices, each slice (N, H, W, 1) times one kernel tap
  (C_out,), fused into one loop where XLA:CPU's convolution of a single
  channel runs a matrix product with K = k*k; the gradient (`jax.custom_vjp`)
  is lax's, where autodiff of the slices would reduce a full-size product per
  tap. Counted cost: 2*k*k - 1 FLOPs per output element, as for depthwise.
  Off by default because it is not always faster: it breaks up the single
  YNNPACK fusion in which XLA:CPU runs the whole plain CNN forward
  (benchmarks/RESULTS.md).
* 1x1 without padding: the forward is `lax.conv_general_dilated` itself (same
  jaxpr and XLA FLOPs), but its gradient (`jax.custom_vjp`) is two matrix
  products over channels, dx = dy @ kernel^T and dkernel = x^T @ dy. XLA:CPU
  runs the default kernel gradient as a convolution whose window is the whole
  image, 2-3x slower.

* an image smaller than the window (ungrouped; the window's k_h * k_w
  positions outnumber the H * W of the input or of the output, say a 3x3
  conv on a 2x2 image, or a stride-2 conv to 2x2, whose input gradient sees
  the 2x2 output): a sum of k_h convolutions by the kernel's 1 x k_w rows,
  each with its own vertical padding (negative where it crops), or, where a
  row is still larger than the image (a 1x1 image), a sum of k_h * k_w
  single-tap convolutions, each on the slice of the input it reads. XLA:CPU
  swaps the operands of such a convolution (the image becomes the window)
  and runs the swapped form 10-20x slower: a 2x2x128 -> 128 3x3 conv at
  batch 128 took 23 ms forward and 51 ms with its gradients, the rows 1.3 and
  3.9 ms; a 1x1x256 -> 256 one 16 and 35 ms, the taps 0.8 and 2.0 ms
  (benchmarks/RESULTS.md). Counted cost: every tap as lax's conv counts it
  (the pieces partition the window) plus the sums' adds, k_h - 1 (rows) or
  k_h * k_w - 1 (taps) per output element, in both counters.

* other ungrouped float32 convolutions whose C_out is a multiple of the
  native vector width (`native_conv.applies`): the forward is
  `lax.conv_general_dilated` itself (same jaxpr and XLA FLOPs); on CPU the
  kernel gradient, and a strided layer's input gradient, run in native code
  (`native_conv.conv`, a `jax.custom_vjp`), 1.8-2.2x faster than XLA:CPU's.

Everything else (those convolutions where the native code is unavailable,
dilation, other layouts, integer types) goes to `lax.conv_general_dilated`
unchanged: the alternatives measured there (im2col matrix products for the
gradients) were slower (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from efficiency.models import native_conv

SINGLE_CHANNEL_FORMS = ('conv', 'shifted')
_single_channel = contextvars.ContextVar('single_channel', default='conv')

# The layout nnx.Conv uses, and its lhs, rhs and out specs.
_NHWC = ('NHWC', 'HWIO', 'NHWC')
_NHWC_SPECS = ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))


def _is_nhwc(dimension_numbers: Any) -> bool:
  if isinstance(dimension_numbers, lax.ConvDimensionNumbers):
    specs = (dimension_numbers.lhs_spec, dimension_numbers.rhs_spec, dimension_numbers.out_spec)
    return tuple(tuple(s) for s in specs) == _NHWC_SPECS
  return dimension_numbers is not None and tuple(dimension_numbers) == _NHWC


def _all_ones(values: Sequence[int] | None) -> bool:
  return values is None or all(v == 1 for v in values)


def explicit_padding(in_hw: Sequence[int], kernel_hw: Sequence[int], strides: Sequence[int],
                     padding: str | Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
  """((top, bottom), (left, right)) for a padding string ('SAME', 'VALID', ...) or pairs."""
  if isinstance(padding, str):
    pairs = lax.padtype_to_pads(in_hw, kernel_hw, strides, padding)
  else:
    pairs = padding
  return tuple((int(low), int(high)) for low, high in pairs)


def output_hw(in_hw: Sequence[int], kernel_hw: Sequence[int], strides: Sequence[int],
              pads: Sequence[tuple[int, int]]) -> tuple[int, int]:
  """(height, width) of a convolution's output, from explicit `pads`."""
  return tuple((size + low + high - k) // s + 1
               for size, (low, high), k, s in zip(in_hw, pads, kernel_hw, strides))


def depthwise_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                   pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """Depthwise conv of NHWC `x` with an HWIO `kernel` (kh, kw, 1, C) as shifted multiply-adds.

  With one input channel (x is (N, H, W, 1)) the same sum is the ungrouped
  convolution to C output channels: each tap broadcasts over them.
  """
  kh, kw, _, _ = kernel.shape
  n, _, _, c = x.shape
  (sh, sw), (pad_h, pad_w) = strides, pads
  out_h, out_w = output_hw(x.shape[1:3], (kh, kw), strides, pads)
  padded = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pad_h, 0), (*pad_w, 0), (0, 0, 0)))
  out = None
  for i in range(kh):
    for j in range(kw):
      tap = lax.slice(padded, (0, i, j, 0),
                      (n, i + (out_h - 1) * sh + 1, j + (out_w - 1) * sw + 1, c), (1, sh, sw, 1))
      term = tap * kernel[i, j, 0]
      out = term if out is None else out + term
  return out


def _single_channel_fwd(x, kernel, strides, pads):
  return depthwise_conv(x, kernel, strides, pads), (x, kernel)


def _single_channel_bwd(strides, pads, saved, dy):
  x, kernel = saved
  if native_conv.applies(x, kernel):
    conv = lambda x, kernel: native_conv.conv(x, kernel, strides, pads, None)
  else:
    conv = lambda x, kernel: lax.conv_general_dilated(x, kernel, strides, pads,
                                                      dimension_numbers=_NHWC)
  _, vjp = jax.vjp(conv, x, kernel)
  return vjp(dy)


single_channel_conv = jax.custom_vjp(depthwise_conv, nondiff_argnums=(2, 3))
single_channel_conv.defvjp(_single_channel_fwd, _single_channel_bwd)
single_channel_conv.__doc__ = ('Conv of NHWC `x` with one channel by an HWIO `kernel` (kh, kw, 1, '
                               "C_out): shifted multiply-adds forward, a convolution's gradients "
                               '(native_conv where it applies, else lax).')


@contextlib.contextmanager
def single_channel_form(form: str) -> Iterator[None]:
  """Within this block, `conv_general_dilated` uses `form` for one-channel inputs.

  The form is read while tracing, and JAX's trace caches do not know it: set
  it inside the traced function, around the conv call (as `layers.ConvBNReLU`
  does), not around a call of an already-jitted function.
  """
  if form not in SINGLE_CHANNEL_FORMS:
    raise ValueError(f'single_channel form {form!r} is not one of {SINGLE_CHANNEL_FORMS}')
  token = _single_channel.set(form)
  try:
    yield
  finally:
    _single_channel.reset(token)


def _pointwise_forward(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                       precision: Any) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, strides, 'VALID', precision=precision,
                                  dimension_numbers=_NHWC)


def _pointwise_fwd(x, kernel, strides, precision):
  return _pointwise_forward(x, kernel, strides, precision), (x, kernel)


def _pointwise_bwd(strides, precision, saved, dy):
  x, kernel = saved
  sh, sw = strides
  sampled = x[:, ::sh, ::sw, :] if strides != (1, 1) else x
  d_kernel = jnp.einsum('nhwc,nhwd->cd', sampled, dy, precision=precision)[None, None]
  d_sampled = jnp.einsum('nhwd,cd->nhwc', dy, kernel[0, 0], precision=precision)
  if strides != (1, 1):
    _, h, w, _ = x.shape
    _, oh, ow, _ = dy.shape
    d_sampled = lax.pad(d_sampled, jnp.zeros((), dy.dtype), (
        (0, 0, 0), (0, h - (oh - 1) * sh - 1, sh - 1), (0, w - (ow - 1) * sw - 1, sw - 1),
        (0, 0, 0)))
  return d_sampled.astype(x.dtype), d_kernel.astype(kernel.dtype)


pointwise_conv = jax.custom_vjp(_pointwise_forward, nondiff_argnums=(2, 3))
pointwise_conv.defvjp(_pointwise_fwd, _pointwise_bwd)
pointwise_conv.__doc__ = ('1x1 conv of NHWC `x`, HWIO `kernel` (1, 1, C_in, C_out), no padding: '
                          "lax's forward, gradients as matrix products over channels.")


def window_pieces(in_hw: Sequence[int], out_hw: Sequence[int], kernel_hw: Sequence[int]) -> str:
  """'rows' or 'taps' when the window has more positions than the input or the output image
  (XLA would swap the operands), the largest pieces that fit; else 'whole' (also for an
  empty output)."""
  smallest = min(in_hw[0] * in_hw[1], out_hw[0] * out_hw[1])
  if smallest == 0 or kernel_hw[0] * kernel_hw[1] <= smallest:
    return 'whole'
  return 'rows' if kernel_hw[0] > 1 and kernel_hw[1] <= smallest else 'taps'


def conv_by_kernel_rows(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                        pads: tuple[tuple[int, int], ...], precision: Any = None) -> jax.Array:
  """NHWC `x` by HWIO `kernel` as the sum over kernel rows i of a conv by row i alone.

  Output row r of the full conv reads padded input row r * stride + i for kernel row i:
  the conv by row i alone with top padding pad_top - i and bottom padding
  pad_bottom - (k_h - 1 - i) reads the same rows and has the same output size.
  """
  kh = kernel.shape[0]
  (top, bottom), cols = pads
  return functools.reduce(operator.add, (
      lax.conv_general_dilated(x, kernel[i:i + 1], strides,
                               ((top - i, bottom - (kh - 1 - i)), cols), precision=precision,
                               dimension_numbers=_NHWC)
      for i in range(kh)))


def _tap_window(size: int, low: int, high: int, tap: int, k: int, out: int,
                stride: int) -> tuple[int, int, int, int]:
  """(start, stop, pad_low, pad_high) along one axis: the input slice and padding whose 1-tap
  conv reads what tap `tap` of the full window reads (slices, not negative padding: XLA:CPU
  miscomputes 1x1 convs with negative low padding, benchmarks/RESULTS.md)."""
  low, high = low - tap, high - (k - 1 - tap)
  start, stop = max(0, -low), size - max(0, -high)
  if start >= stop:  # the tap reads padding only: an empty slice padded to the output size
    return 0, 0, 0, (out - 1) * stride + 1
  return start, stop, max(0, low), max(0, high)


def conv_by_kernel_taps(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                        pads: tuple[tuple[int, int], ...], precision: Any = None) -> jax.Array:
  """NHWC `x` by HWIO `kernel` as the sum over taps (i, j) of 1x1 convs on the input they read."""
  (kh, kw), (_, h, w, _) = kernel.shape[:2], x.shape
  out_h, out_w = output_hw((h, w), (kh, kw), strides, pads)

  def tap(i: int, j: int) -> jax.Array:
    row_start, row_stop, top, bottom = _tap_window(h, *pads[0], i, kh, out_h, strides[0])
    col_start, col_stop, left, right = _tap_window(w, *pads[1], j, kw, out_w, strides[1])
    return lax.conv_general_dilated(
        x[:, row_start:row_stop, col_start:col_stop], kernel[i:i + 1, j:j + 1], strides,
        ((top, bottom), (left, right)), precision=precision, dimension_numbers=_NHWC)
  return functools.reduce(operator.add, (tap(i, j) for i in range(kh) for j in range(kw)))


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                         padding: str | Sequence[tuple[int, int]],
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision: Any = None,
                         preferred_element_type: Any = None, *,
                         single_channel: str | None = None, **kwargs: Any) -> jax.Array:
  """`lax.conv_general_dilated` (same signature) with the fast paths in the module docstring.

  `single_channel='shifted'` turns on the one-input-channel path ('conv': lax's
  convolution); None takes the form set by the enclosing `single_channel_form`.
  """
  single_channel = _single_channel.get() if single_channel is None else single_channel
  plain_2d = (
      lhs.ndim == 4 and rhs.ndim == 4 and _is_nhwc(dimension_numbers)
      and _all_ones(lhs_dilation) and _all_ones(rhs_dilation) and batch_group_count == 1
      and preferred_element_type is None and kwargs.get('out_sharding') is None
      and jnp.issubdtype(lhs.dtype, jnp.floating) and lhs.dtype == rhs.dtype)
  if plain_2d:
    strides = tuple(int(s) for s in window_strides)
    pads = explicit_padding(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    no_negative_pads = all(p >= 0 for pair in pads for p in pair)
    depthwise = feature_group_count == lhs.shape[3] == rhs.shape[3] > 1 and rhs.shape[2] == 1
    if depthwise and no_negative_pads:
      return depthwise_conv(lhs, rhs, strides, pads)
    one_channel = feature_group_count == 1 and lhs.shape[3] == rhs.shape[2] == 1
    if single_channel == 'shifted' and one_channel and no_negative_pads:
      return single_channel_conv(lhs, rhs, strides, pads)
    unpadded = all(p == (0, 0) for p in pads)
    if feature_group_count == 1 and rhs.shape[:2] == (1, 1) and unpadded:
      return pointwise_conv(lhs, rhs, strides, precision)
    out_hw = output_hw(lhs.shape[1:3], rhs.shape[:2], strides, pads)
    pieces = window_pieces(lhs.shape[1:3], out_hw, rhs.shape[:2])
    if feature_group_count == 1 and no_negative_pads and pieces != 'whole':
      by_pieces = conv_by_kernel_rows if pieces == 'rows' else conv_by_kernel_taps
      return by_pieces(lhs, rhs, strides, pads, precision)
    if feature_group_count == 1 and no_negative_pads and native_conv.applies(lhs, rhs):
      return native_conv.conv(lhs, rhs, strides, pads, precision)
  return lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
      feature_group_count, batch_group_count, precision, preferred_element_type, **kwargs)
