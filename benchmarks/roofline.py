r"""Roofline of the benchmark models: achieved FLOP/s against arithmetic intensity, under the ceilings.

  python benchmarks/roofline.py [--out=benchmarks/roofline.png] [--ceiling-seconds=5]

Measures the machine's ceilings (`efficiency.measure.ceilings`), then, for each
model at each benchmark size:
  * inference at batch 64: `efficiency.measure.measure_model` (XLA's FLOPs of the
    compiled program, arithmetic intensity = lowered FLOPs / lowered bytes, the
    median timed call), exactly the figures the studies' report plots;
  * the training step at batch 128: XLA's FLOPs and lowered bytes of the toolkit's
    step (`xla_cost`, traced with XLA's own convolution gradients, since XLA counts
    nothing inside the native ones' custom calls), timed as the median of `--calls`
    steps (with the native gradients).
Prints a table (achieved GFLOP/s, shares of peak and of the roof, what bounds
it) and saves the roofline PNG. The lowered bytes count every op's operands and
outputs as if nothing were fused: an upper bound on traffic, so the intensity is
a lower bound and a point may sit above the memory roof (fusion moved fewer
bytes). 'Bound': compute when a point reaches a third of peak FLOP/s; else
memory when it is left of the ridge point and reaches a third of its memory
roof; else overhead (the machine waits on small kernels, dispatch or scheduling,
not on arithmetic or memory).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import common
import sides

_REACHES_ROOF = 1 / 3


def _bound(intensity: float, achieved: float, peak: float, bandwidth: float) -> tuple[float, str]:
  """(achieved / roof at this intensity, 'compute' | 'memory' | 'overhead'), see the docstring."""
  share = achieved / min(peak, bandwidth * intensity)
  if achieved >= _REACHES_ROOF * peak:
    return share, 'compute'
  if intensity < peak / bandwidth and share >= _REACHES_ROOF:
    return share, 'memory'
  return share, 'overhead'


def _inference_point(family: str, shape: tuple[int, ...], batch: int) -> dict:
  from efficiency.measure import measure_model
  model = sides.flax_model(family, shape)
  record = measure_model(model, shape, throughput_batch=batch, per_layer=False)
  cost = record['costs'][str(batch)]
  seconds = record['throughput_timing']['median']
  return dict(flops=cost['flops_xla'], bytes=cost['bytes_xla_lowered'],
              intensity=cost['arithmetic_intensity'], seconds=seconds)


def _train_point(family: str, shape: tuple[int, ...], batch: int, calls: int) -> dict:
  from efficiency.measure import xla_cost
  from efficiency.models import native_conv
  # XLA counts nothing inside the native gradients' custom calls: count the same step traced
  # with XLA's own gradients, and time the one the toolkit runs.
  with native_conv.disabled():
    counted_step, counted_state, counted_args = sides.flax_train_step(family, shape, batch)
    cost = xla_cost(counted_step, counted_state, *counted_args)   # lowers and compiles only
  step, state, args = sides.flax_train_step(family, shape, batch)
  call = sides.step_caller(step, state, args)
  for _ in range(3):
    call()
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return dict(flops=cost['flops'], bytes=cost['bytes_accessed_lowered'],
              intensity=cost['flops_lowered'] / cost['bytes_accessed_lowered'],
              seconds=statistics.median(times))


def _plot(points: list[dict], ceilings: dict, path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import numpy as np
  peak, bandwidth = ceilings['peak_flops_per_s'], ceilings['bandwidth_bytes_per_s']
  intensities = [p['intensity'] for p in points] + [peak / bandwidth]
  xs = np.geomspace(min(intensities) / 3, max(intensities) * 3, 200)
  fig, ax = plt.subplots(figsize=(8, 5.5))
  ax.plot(xs, np.minimum(peak, bandwidth * xs), 'k--', lw=1.5,
          label=f'roof: {peak / 1e9:.0f} GFLOP/s, {bandwidth / 1e9:.1f} GB/s')
  markers = {'inference b64': 'o', 'train step b128': 's'}
  models = list(dict.fromkeys(p['model'] for p in points))
  colors = dict(zip(models, plt.get_cmap('tab10').colors))
  for point in points:
    ax.scatter(point['intensity'], point['achieved'], marker=markers[point['mode']], s=50,
               color=colors[point['model']], label=f"{point['model']}, {point['mode']}", zorder=3)
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xlabel('arithmetic intensity (XLA FLOPs per lowered byte)')
  ax.set_ylabel('achieved FLOP/s')
  ax.set_title(f"Roofline, {ceilings['hardware_id']}")
  ax.legend(loc='lower right', fontsize=7)
  ax.grid(True, which='both', alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  parser = common.parser(__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'roofline.png'))
  parser.add_argument('--ceiling-seconds', type=float, default=5.0)
  parser.add_argument('--calls', type=int, default=20, help='timed training steps per model')
  args = parser.parse_args()
  if args.runtime == 'tuned':
    from efficiency import cpu_runtime
    cpu_runtime.configure()
  from efficiency.measure.ceilings import measure_ceilings
  print(common.header('Roofline: ceilings and the benchmark models', args), flush=True)
  ceilings = measure_ceilings(args.ceiling_seconds)
  peak, bandwidth = ceilings['peak_flops_per_s'], ceilings['bandwidth_bytes_per_s']
  print(f'ceilings: {peak / 1e9:.1f} GFLOP/s peak float32 matmul (n={ceilings["matmul_size"]}), '
        f'{bandwidth / 1e9:.1f} GB/s streaming read, ridge point {peak / bandwidth:.1f} FLOPs/byte')
  points = []
  for label, family, shape in common.selected_models(args):
    for mode, measure in (('inference b64', lambda: _inference_point(family, shape, 64)),
                          ('train step b128', lambda: _train_point(family, shape, 128, args.calls))):
      point = dict(model=label, mode=mode, **measure())
      point['achieved'] = point['flops'] / point['seconds']
      point['share_of_roof'], point['bound'] = _bound(point['intensity'], point['achieved'],
                                                      peak, bandwidth)
      points.append(point)
      print(f'  done: {label}, {mode}', flush=True)
  rows = [[p['model'], p['mode'], f"{p['flops'] / 1e9:.3f}", f"{p['intensity']:.2f}",
           f"{p['seconds'] * 1e3:.2f}", f"{p['achieved'] / 1e9:.1f}",
           f"{p['achieved'] / peak:.0%}", f"{p['share_of_roof']:.0%}", p['bound']] for p in points]
  print(common.table(['model', 'what', 'GFLOP per call (XLA)', 'FLOPs/byte', 'median ms',
                      'achieved GFLOP/s', 'of peak', 'of roof', 'bound'], rows))
  _plot(points, ceilings, args.out)
  with open(os.path.splitext(args.out)[0] + '.json', 'w') as f:
    json.dump(dict(ceilings=ceilings, points=points), f, indent=1)
  print(f'wrote {args.out} and its .json')
  print(common.load_line())


if __name__ == '__main__':
  main()
