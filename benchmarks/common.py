"""What the benchmark scripts share: the torch check, flags, the output header, medians, tables.

Ratios are ratios of medians; every table says how many calls each side made.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from efficiency.measure import hardware_id, hardware_report  # noqa: E402

# (label, family, input shape): the 28x28x1 stand-in size and the base config's 8x8x1.
MODELS = (('CNN 28x28x1', 'cnn', (28, 28, 1)), ('MobileNet 28x28x1', 'mobilenet', (28, 28, 1)),
          ('CNN 8x8x1', 'cnn', (8, 8, 1)), ('MobileNet 8x8x1', 'mobilenet', (8, 8, 1)))


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


def median(samples: list[float]) -> float:
  return statistics.median(samples)


def ratio(ours: float | None, theirs: float | None) -> str:
  return '-' if ours is None or not theirs else f'{ours / theirs:.2f}'


def summary(samples: dict[str, list[float]], names) -> tuple[dict, dict]:
  """({side: median s}, {side: best s}), None for a side with no samples (it failed)."""
  medians = {n: median(samples[n]) if samples.get(n) else None for n in names}
  bests = {n: min(samples[n]) if samples.get(n) else None for n in names}
  return medians, bests


def two_ratios(ours: str, theirs, medians: dict, bests: dict) -> str:
  """'median ratio (best-call ratio)'; `theirs` is a side name or a list (the fastest counts)."""
  names = [theirs] if isinstance(theirs, str) else list(theirs)

  def fastest(values):
    present = [values[n] for n in names if values.get(n) is not None]
    return min(present) if present else None
  return f'{ratio(medians[ours], fastest(medians))} ({ratio(bests[ours], fastest(bests))})'


def table(columns: list[str], rows: list[list[Any]]) -> str:
  """A Markdown table."""
  lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
  lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
  return '\n'.join(lines)


def load_line() -> str:
  return 'load average at end: ' + ', '.join(f'{x:.1f}' for x in os.getloadavg())
