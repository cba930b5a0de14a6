"""What the benchmark scripts share: the torch check, flags, the output header, statistics, tables.

Ratios are ratios of medians; every table says how many calls each side made. The sides
take turns in rounds, so each round also gives a paired ratio (our median call that round
over theirs): machine load that drifts between rounds affects both sides of a pair alike.
The tables give the median of those per-round ratios with a distribution-free 95%
confidence interval, and call a goal met or missed only when the whole interval is on
one side of it.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from efficiency.measure import hardware_id, hardware_report  # noqa: E402

# (label, family, input shape): the 28x28x1 stand-in size and the base config's 8x8x1.
MODELS = (('CNN 28x28x1', 'cnn', (28, 28, 1)), ('MobileNet 28x28x1', 'mobilenet', (28, 28, 1)),
          ('ResNet 28x28x1', 'resnet', (28, 28, 1)),
          ('CNN 8x8x1', 'cnn', (8, 8, 1)), ('MobileNet 8x8x1', 'mobilenet', (8, 8, 1)),
          ('ResNet 8x8x1', 'resnet', (8, 8, 1)))


def require_torch() -> None:
  """Exits with how to install PyTorch when it is missing."""
  try:
    import torch  # noqa: F401
  except ImportError:
    print("PyTorch is not installed: pip install '.[torch]'", file=sys.stderr)
    sys.exit(1)


def parser(description: str) -> argparse.ArgumentParser:
  """An argument parser with the flags every script takes."""
  p = argparse.ArgumentParser(description=description)
  p.add_argument('--rounds', type=int, default=10, help='rounds of alternation')
  p.add_argument('--models', default='cnn,mobilenet', help='families to run')
  p.add_argument('--sizes', default='28,8', help='square input sizes to run (1 channel)')
  p.add_argument('--runtime', choices=('tuned', 'default'), default='tuned',
                 help='tuned: the "flax" side calls efficiency.cpu_runtime.configure() first, as '
                      "the toolkit's entry points do; default: glibc's and XLA's defaults")
  return p


def selected_models(args: argparse.Namespace) -> list[tuple[str, str, tuple[int, ...]]]:
  return [(label, family, shape) for label, family, shape in MODELS
          if family in args.models.split(',') and str(shape[0]) in args.sizes.split(',')]


def header(title: str, args: argparse.Namespace | None = None) -> str:
  """Title, date, machine, versions, load and flags: the first lines of every benchmark's output."""
  report = hardware_report()
  versions = ', '.join(f'{k} {v}' for k, v in report['versions'].items() if v)
  try:
    import torch
    versions += f', torch {torch.__version__}'
  except ImportError:
    pass
  load = ', '.join(f'{x:.1f}' for x in os.getloadavg())
  lines = [f'# {title}',
           f"{datetime.date.today().isoformat()} | {hardware_id(report)} | {report['cpu_model']}, "
           f"{report['usable_cores']} cores | {versions}",
           f'load average at start (1, 5, 15 min): {load}']
  if args is not None:
    lines.append('flags: ' + ' '.join(f'--{k}={v}' for k, v in sorted(vars(args).items())))
  return '\n'.join(lines)


def ratio(ours: float | None, theirs: float | None) -> str:
  return '-' if ours is None or not theirs else f'{ours / theirs:.2f}'


def summary(samples: dict[str, list[list[float]]], names) -> tuple[dict, dict]:
  """({side: median s}, {side: best s}) over all calls, None for a side with no samples (it failed)."""
  flat = {n: [t for calls in samples.get(n, []) for t in calls] for n in names}
  medians = {n: statistics.median(flat[n]) if flat[n] else None for n in names}
  bests = {n: min(flat[n]) if flat[n] else None for n in names}
  return medians, bests


def _side_names(theirs) -> list[str]:
  """`theirs` is one side's name or several (then the fastest of them counts)."""
  return [theirs] if isinstance(theirs, str) else list(theirs)


def call_counts(samples: dict[str, list[list[float]]], names) -> str:
  return ' / '.join(str(sum(len(calls) for calls in samples.get(n, []))) for n in names)


def two_ratios(ours: str, theirs, medians: dict, bests: dict) -> str:
  """'median ratio (best-call ratio)'; `theirs`: see `_side_names`."""
  names = _side_names(theirs)

  def fastest(values):
    present = [values[n] for n in names if values.get(n) is not None]
    return min(present) if present else None
  return f'{ratio(medians[ours], fastest(medians))} ({ratio(bests[ours], fastest(bests))})'


def median_interval(values: list[float], confidence: float = 0.95
                    ) -> tuple[float, float, float, float]:
  """(median, low, high, coverage): a distribution-free confidence interval for the median.

  The population median lies between the j-th smallest and the j-th largest of n
  independent values with probability 1 - 2 P(Binomial(n, 1/2) < j); j is the largest rank
  whose coverage is at least `confidence`. Below 6 values no rank reaches 95%: the interval
  is then the whole range, with its (lower) coverage returned.
  """
  if not values:
    raise ValueError('median_interval needs at least one value')
  ordered, n = sorted(values), len(values)
  coverage_of = lambda j: 1.0 - 2.0 * sum(math.comb(n, i) for i in range(j)) / 2.0 ** n
  j = 1
  while j + 1 <= (n + 1) // 2 and coverage_of(j + 1) >= confidence:
    j += 1
  return statistics.median(ordered), ordered[j - 1], ordered[n - j], coverage_of(j)


def round_ratios(samples: dict[str, list[list[float]]], ours: str, theirs) -> list[float]:
  """Per round: our median call over the fastest median call among `theirs` that round."""
  names = _side_names(theirs)
  ratios = []
  for index, calls in enumerate(samples.get(ours, [])):
    others = [statistics.median(samples[n][index]) for n in names if samples.get(n)]
    if calls and others:
      ratios.append(statistics.median(calls) / min(others))
  return ratios


def paired_ratio(samples: dict[str, list[list[float]]], ours: str, theirs,
                 goal: float | None = None) -> str:
  """'median [low, high]' of the per-round ratios, and with a goal: met, missed or within noise."""
  ratios = round_ratios(samples, ours, theirs)
  if not ratios:
    return '-'
  middle, low, high, coverage = median_interval(ratios)
  text = f'{middle:.2f} [{low:.2f}, {high:.2f}]'
  if coverage < 0.95:
    text += f' ({coverage:.0%} interval)'
  if goal is not None:
    verdict = ('undecided (6 rounds or more decide)' if coverage < 0.95 else
               'met' if high <= goal else 'missed' if low > goal else 'within noise')
    text += f': <= {goal:g} {verdict}'
  return text


def table(columns: list[str], rows: list[list[Any]]) -> str:
  """A Markdown table."""
  lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
  lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
  return '\n'.join(lines)


def load_line() -> str:
  return 'load average at end: ' + ', '.join(f'{x:.1f}' for x in os.getloadavg())
