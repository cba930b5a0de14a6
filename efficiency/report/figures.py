"""What every figure shares: the Agg backend, a readable style, panels per machine, saving PNG+SVG.

Figures are ~6x4 inches per panel with 9 pt text or larger, saved at 150 dpi as
PNG (inline in the Markdown report) and as SVG (for papers and zooming).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Sequence

import matplotlib

matplotlib.use('Agg')  # files only, never a window; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402

PANEL_SIZE = (6.0, 4.0)
DPI = 150
LOG_RANGE = 20.0  # an axis whose max/min exceeds this is drawn in log scale
STYLE = {'font.size': 9, 'axes.titlesize': 10, 'axes.labelsize': 9, 'legend.fontsize': 9,
         'xtick.labelsize': 9, 'ytick.labelsize': 9, 'axes.grid': True, 'grid.alpha': 0.3,
         'svg.hashsalt': 'efficiency', 'svg.fonttype': 'none'}
PROTOCOL_MARKERS = {'train': 'o', 'evaluate': 's', 'distill': 'D'}
BASE_STYLE = {'marker': '*', 's': 160, 'color': 'black', 'zorder': 5}
FRONTIER_COLOR = '0.25'


@contextlib.contextmanager
def style() -> Iterator[None]:
  with plt.rc_context(STYLE):
    yield


def panels(count: int, *, sharex: bool = False, sharey: bool = False) -> tuple[plt.Figure, list]:
  """A figure with `count` panels (one per machine) stacked vertically, so the figure keeps its
  6-inch width (and its text size) on a page, with room for the legend below."""
  count = max(count, 1)
  height = PANEL_SIZE[1] + 0.6 if count == 1 else 0.8 * PANEL_SIZE[1] * count + 0.6
  fig, axes = plt.subplots(count, 1, figsize=(PANEL_SIZE[0], height), sharex=sharex,
                           sharey=sharey, squeeze=False, layout='constrained')
  return fig, list(axes[:, 0])


def wants_log(values: Sequence[float]) -> bool:
  """True when the positive values span more than LOG_RANGE (max/min)."""
  array = np.asarray([v for v in values if v is not None and np.isfinite(v) and v > 0], dtype=float)
  return array.size > 1 and array.max() / array.min() > LOG_RANGE


def set_scale(axis: matplotlib.axis.Axis, values: Sequence[float], *, prefixes: bool = True) -> None:
  """Log scale when the range calls for it; tick labels with SI prefixes (k, M, G) for counts,
  plain numbers (prefixes=False) for values already in a unit such as ms."""
  ax = axis.axes
  if wants_log(values):
    (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)('log')
    log_ticks(axis, values)
  axis.set_major_formatter(ticker.EngFormatter(sep=' ') if prefixes
                           else ticker.FuncFormatter(lambda v, _: f'{v:g}'))


def log_ticks(axis: matplotlib.axis.Axis, values: Sequence[float]) -> None:
  """Labels at 1, 2 and 5 x 10^k when the data span under two decades, else at 10^k only."""
  array = np.asarray([v for v in values if v is not None and np.isfinite(v) and v > 0], dtype=float)
  decades = np.log10(array.max() / array.min()) if array.size else 0.0
  axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2 else (1.0,)))
  axis.set_minor_formatter(ticker.NullFormatter())


def time_unit(seconds: Sequence[float]) -> tuple[float, str]:
  """(scale, unit) to show latencies: ms, or µs when every value is below a millisecond."""
  finite = [s for s in seconds if s is not None and np.isfinite(s)]
  return (1e6, 'µs') if finite and max(finite) < 1e-3 else (1e3, 'ms')


def method_colors(labels: Sequence[str]) -> dict[str, tuple]:
  """A stable colour per method label (the same method has the same colour in every figure)."""
  palette = plt.get_cmap('tab10').colors
  return {label: palette[i % len(palette)] for i, label in enumerate(sorted(set(labels)))}


def figure_legend(fig: plt.Figure, axes: list) -> None:
  """One legend for all panels, below them, each label once."""
  seen = {}
  for ax in axes:
    for handle, label in zip(*ax.get_legend_handles_labels()):
      seen.setdefault(label, handle)
  if seen:
    # As many columns as fit the figure's width at ~0.065 in per character of 9 pt text.
    longest = max(len(label) for label in seen)
    fits = int(fig.get_figwidth() // (0.065 * longest + 0.6))
    fig.legend(list(seen.values()), list(seen.keys()), loc='outside lower center',
               ncol=max(1, min(len(seen), fits, 4)), frameon=False)


def save_figure(fig: plt.Figure, folder: str, name: str) -> dict[str, str]:
  """Writes <folder>/<name>.png and .svg, closes the figure; returns {'png': path, 'svg': path}."""
  os.makedirs(folder, exist_ok=True)
  paths = {}
  for extension in ('png', 'svg'):
    path = os.path.join(folder, f'{name}.{extension}')
    tmp = os.path.join(folder, f'.{name}.tmp.{extension}')
    fig.savefig(tmp, dpi=DPI, format=extension, metadata={'Date': None} if extension == 'svg'
                else None)
    os.replace(tmp, path)
    paths[extension] = path
  plt.close(fig)
  return paths


def note(ax, text: str) -> None:
  """A short grey note in the panel's top-left corner (e.g. 'ceilings not measured')."""
  ax.text(0.02, 0.97, text, transform=ax.transAxes, va='top', ha='left', fontsize=9, color='0.35')
