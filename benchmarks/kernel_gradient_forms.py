r"""Kernel gradients of the plain CNN's two large convolutions, in the forms tried against XLA's own.

  python benchmarks/kernel_gradient_forms.py [--rounds=12] [--batch=128] [--splits=4,8,16]

The CNN's 28x28 training step spends most of what it loses to PyTorch in the
kernel gradients (dL/dkernel) of conv2 (28x28x32 -> 14x14x64, stride 2) and
conv3 (14x14x64 -> 64) (benchmarks/RESULTS.md). Each form below computes the
same (3, 3, C_in, C_out) array from the layer input x and the output's
cotangent dy; all are timed in this one process (the toolkit's runtime
settings applied first), taking turns round after round:

  * xla:        `jax.vjp` of `lax.conv_general_dilated` for the kernel, what the
                toolkit runs: XLA transposes x to (C, H, W, N) and runs a
                convolution whose window is dy;
  * split G:    the batch cut into G chunks: one transpose of x to
                (G, C, H, W, N/G), G such convolutions, summed (7 adds more per
                kernel entry for G = 8);
  * im2col:     the nine taps of x stacked as a (9 C, N H W) matrix times dy as
                (N H W, C_out), one matrix product.
  * native:     `efficiency.models.native_conv.kernel_gradient`, the C++ loops the
                toolkit's training uses (left out where they cannot be built).

Prints per form the median ms, GFLOP/s (2 * taps * C_in * C_out * N * H_out * W_out), the
median per-round ratio to `xla` with its 95% interval, and the largest difference from
`xla` relative to its largest entry. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from efficiency import cpu_runtime  # noqa: E402  (before JAX starts)

import common  # noqa: E402

LAYERS = (('conv2 28x28x32 -> 64, stride 2', (28, 28, 32), 64, 2),
          ('conv3 14x14x64 -> 64', (14, 14, 64), 64, 1))


def forms(splits):
  """{name: form(x, kernel, dy, stride, pads) -> kernel gradient}: 'xla', 'split G' per G, 'im2col',
  'native' where it can be built (it needs C_out a multiple of `native_conv.vector_width()`)."""
  import jax
  import jax.numpy as jnp
  from jax import lax

  from efficiency.models import native_conv
  nhwc = ('NHWC', 'HWIO', 'NHWC')

  def xla(x, kernel, dy, stride, pads):
    conv = lambda k: lax.conv_general_dilated(x, k, (stride, stride), pads, dimension_numbers=nhwc)
    return jax.vjp(conv, kernel)[1](dy)[0]

  def split(groups):
    def form(x, kernel, dy, stride, pads):
      n, h, w, c = x.shape
      _, out_h, out_w, c_out = dy.shape
      xt = jnp.transpose(x.reshape(groups, n // groups, h, w, c), (0, 4, 2, 3, 1))
      dyt = jnp.transpose(dy.reshape(groups, n // groups, out_h, out_w, c_out), (0, 2, 3, 1, 4))
      total = None
      for i in range(groups):
        part = lax.conv_general_dilated(xt[i], dyt[i], (1, 1), pads, rhs_dilation=(stride, stride),
                                        dimension_numbers=nhwc)
        total = part if total is None else total + part
      return jnp.transpose(total, (1, 2, 0, 3))
    return form

  def im2col(x, kernel, dy, stride, pads):
    kh, kw, c, c_out = kernel.shape
    _, out_h, out_w, _ = dy.shape
    xt = jnp.pad(jnp.transpose(x, (3, 0, 1, 2)), ((0, 0), (0, 0), *pads))
    taps = [xt[:, :, a:a + stride * (out_h - 1) + 1:stride, b:b + stride * (out_w - 1) + 1:stride]
            for a in range(kh) for b in range(kw)]
    patches = jnp.stack(taps).reshape(kh * kw * c, -1)
    product = lax.dot_general(patches, dy.reshape(-1, c_out), (((1,), (0,)), ((), ())))
    return product.reshape(kh, kw, c, c_out)

  def native(x, kernel, dy, stride, pads):
    return native_conv.kernel_gradient(x, dy, kernel.shape, (stride, stride), pads)

  found = {'xla': xla, **{f'split {g}': split(g) for g in splits}, 'im2col': im2col}
  if native_conv.status()['available']:
    found['native'] = native
  return found


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rounds', type=int, default=12)
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--calls', type=int, default=4, help='timed calls per form per round')
  parser.add_argument('--splits', default='4,8,16')
  args = parser.parse_args()
  splits = [int(s) for s in args.splits.split(',') if s]
  if args.rounds < 2 or args.calls < 1 or any(g < 1 or args.batch % g for g in splits):
    parser.error('--rounds >= 2, --calls >= 1, and every split must divide --batch')
  cpu_runtime.configure()
  import jax
  import numpy as np
  from jax import lax
  print(common.header(f'Kernel gradients, batch {args.batch}: forms against XLA\'s', args))
  rng = np.random.default_rng(0)
  rows = []
  for label, (h, w, c), c_out, stride in LAYERS:
    out_h, out_w = -(-h // stride), -(-w // stride)
    pads = tuple(lax.padtype_to_pads((h, w), (3, 3), (stride, stride), 'SAME'))
    x = jax.device_put(rng.normal(size=(args.batch, h, w, c)).astype(np.float32))
    kernel = jax.device_put(rng.normal(size=(3, 3, c, c_out)).astype(np.float32))
    dy = jax.device_put(rng.normal(size=(args.batch, out_h, out_w, c_out)).astype(np.float32))
    gflop = 2 * 9 * c * c_out * args.batch * out_h * out_w / 1e9
    compiled, results = {}, {}
    for name, form in forms(splits).items():
      fn = jax.jit(lambda x, k, g, form=form: form(x, k, g, stride, pads))
      compiled[name] = fn.lower(x, kernel, dy).compile()
      results[name] = np.asarray(compiled[name](x, kernel, dy))   # also the warm-up call
    reference = results['xla']
    errors = {name: float(np.abs(result - reference).max() / np.abs(reference).max())
              for name, result in results.items()}
    samples = {name: [] for name in compiled}
    for _ in range(args.rounds):
      for name, call in compiled.items():
        times = []
        for _ in range(args.calls):
          start = time.perf_counter()
          jax.block_until_ready(call(x, kernel, dy))
          times.append(time.perf_counter() - start)
        samples[name].append(times)
    for name in compiled:
      flat = [t for r in samples[name] for t in r]
      median_ms = statistics.median(flat) * 1e3
      ratios = common.round_ratios(samples, name, 'xla')
      mid, low, high, _ = common.median_interval(ratios)
      rows.append([label, name, f'{median_ms:.2f}', f'{gflop / median_ms * 1e3:.0f}',
                   f'{mid:.2f} [{low:.2f}, {high:.2f}]', f'{errors[name]:.1e}'])
    print(f'  done: {label}', flush=True)
  print(common.table(['layer', 'form', 'median ms', 'GFLOP/s', 'form / xla per round [95% CI]',
                      'max rel. difference'], rows))
  print(common.load_line())


if __name__ == '__main__':
  main()
