r"""Batch-1 latency and batch-64 throughput: this toolkit against PyTorch eager and torch.compile.

  python benchmarks/inference_vs_torch.py [--rounds=10] [--batches=1,64] [--no-compile]

Sides, each in its own process, alternating (see `sides.py`), on identical architectures in eval mode:
  * flax: `jax.jit` over split state of the registry's model (convolutions through `fast_conv`),
    inputs already on the device: how `efficiency.measure` times models; the process set up by
    `efficiency.cpu_runtime.configure()` (unless --runtime=default);
  * before: the same with plain `lax.conv_general_dilated` and XLA's and glibc's defaults;
  * torch eager: the twin under `torch.inference_mode()`, 2 threads;
  * torch.compile: the same after `torch.compile(model)` (default mode).
Per batch size, a Markdown table of medians (latency in us at batch 1, images/s otherwise; the
best call in brackets), the time ratio flax / the faster PyTorch mode, of medians (of best
calls), and the median of the per-round ratios (each round: flax over the faster PyTorch mode
that round) with its 95% confidence interval, checked against the goal <= 1.0
(`common.paired_ratio`). A side that fails to build (say,
torch.compile without a C++ compiler) is reported with its error instead of a number.
"""

from __future__ import annotations

import common
import sides


def _format(median: float | None, best: float | None, batch: int, error: str | None) -> str:
  if median is None:
    return f'failed: {error}'
  if batch == 1:
    return f'{median * 1e6:.0f} us ({best * 1e6:.0f})'
  return f'{batch / median:,.0f} img/s ({batch / best:,.0f})'


def main() -> None:
  parser = common.parser(__doc__.splitlines()[0])
  parser.add_argument('--batches', default='1,64')
  parser.add_argument('--no-compile', action='store_true', help='skip the torch.compile side')
  args = parser.parse_args()
  common.require_torch()
  print(common.header('Inference: flax vs PyTorch eager and torch.compile', args), flush=True)
  tuned = args.runtime == 'tuned'
  for batch in (int(b) for b in args.batches.split(',')):
    rows = []
    for label, family, shape in common.selected_models(args):
      spec = dict(family=family, input_shape=shape, batch=batch)
      runners = {
          'flax': sides.SideProcess('flax_forward', tuned_runtime=tuned, **spec),
          'before': sides.SideProcess('flax_forward', reference=True, **spec),
          'torch eager': sides.SideProcess('torch_forward', **spec),
      }
      if not args.no_compile:
        runners['torch.compile'] = sides.SideProcess('torch_forward', compiled=True, **spec)
      samples = sides.alternate(runners, rounds=args.rounds)
      for runner in runners.values():
        runner.close()
      medians, bests = common.summary(samples, runners)
      torch_sides = [n for n in runners if n.startswith('torch')]
      rows.append([label, *(_format(medians[n], bests[n], batch, runners[n].error) for n in runners),
                   common.two_ratios('flax', torch_sides, medians, bests),
                   common.paired_ratio(samples, 'flax', torch_sides, goal=1.0),
                   common.two_ratios('before', torch_sides, medians, bests),
                   common.call_counts(samples, runners)])
      print(f'  done: batch {batch}, {label}', flush=True)
    what = 'latency (median)' if batch == 1 else 'throughput (from the median call)'
    print(f'\n## Batch {batch}: {what}')
    print(common.table(['model', *runners, 'flax / faster torch (time)',
                        'per round [95% CI]', 'before / faster torch (time)',
                        'calls (each side)'], rows))
  print(common.load_line())


if __name__ == '__main__':
  main()
