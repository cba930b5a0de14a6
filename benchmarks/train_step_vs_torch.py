r"""Training step time (forward, backward, AdamW update; batch 128): this toolkit against PyTorch.

  python benchmarks/train_step_vs_torch.py [--batch=128] [--rounds=10] [--models=cnn,mobilenet]

Sides, each in its own process, alternating (see `sides.py`), on identical architectures:
  * flax: the registry's model and the toolkit's own jitted train step
    (`efficiency.training.steps`), convolutions through `fast_conv`, the process set up by
    `efficiency.cpu_runtime.configure()` (unless --runtime=default);
  * before: the same with plain `lax.conv_general_dilated` (nnx.Conv's default) and XLA's and
    glibc's defaults, i.e. the toolkit before this work;
  * torch: the PyTorch twin (`torch_models`), eager, 2 threads.
Prints a Markdown table: per side the median (and, in brackets, the best call) in ms, the
ratios flax / torch of medians (of best calls), and the median of the per-round flax / torch
ratios with its 95% confidence interval, checked against the goal: <= 1.0 for the CNN (and ResNet), <= 1.5
for MobileNet (`common.paired_ratio`). The best call shows what each side does when the
machine leaves it alone; on a loaded machine PyTorch's OpenMP threads suffer most.
"""

from __future__ import annotations

import common
import sides

GOALS = {'cnn': 1.0, 'resnet': 1.0, 'mobilenet': 1.5}  # plain convolutions 1.0, depthwise 1.5


def main() -> None:
  parser = common.parser(__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=128)
  args = parser.parse_args()
  common.require_torch()
  print(common.header(f'Training step, batch {args.batch}: flax vs PyTorch eager', args), flush=True)
  tuned = args.runtime == 'tuned'
  rows = []
  for label, family, shape in common.selected_models(args):
    spec = dict(family=family, input_shape=shape, batch=args.batch)
    runners = {
        'flax': sides.SideProcess('flax_train', tuned_runtime=tuned, **spec),
        'before': sides.SideProcess('flax_train', reference=True, **spec),
        'torch': sides.SideProcess('torch_train', **spec),
    }
    samples = sides.alternate(runners, rounds=args.rounds)
    for runner in runners.values():
      runner.close()
    medians, bests = common.summary(samples, runners)
    cells = [f'{medians[n] * 1e3:.1f} ({bests[n] * 1e3:.1f})' if medians[n] is not None
             else f'failed: {runners[n].error}' for n in runners]
    rows.append([label, *cells, common.two_ratios('flax', 'torch', medians, bests),
                 common.paired_ratio(samples, 'flax', 'torch', GOALS.get(family)),
                 common.two_ratios('before', 'torch', medians, bests),
                 common.call_counts(samples, runners)])
    print(f'  done: {label}', flush=True)
  print(common.table(['model', 'flax ms', 'before ms', 'torch ms', 'flax / torch',
                      'flax / torch per round [95% CI]', 'before / torch', 'calls (each side)'],
                     rows))
  print(common.load_line())


if __name__ == '__main__':
  main()
