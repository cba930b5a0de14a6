"""Numbers as people read them (FLOPs as k/M/G, seconds as µs/ms/s) and Markdown tables.

Every formatter accepts None or NaN and returns `MISSING` for it, so a value
that was not measured shows as a dash instead of a made-up number.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

MISSING = '–'
_SI_PREFIXES = ((1e15, 'P'), (1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'k'))


def is_missing(value: Any) -> bool:
  """True for None, NaN, infinities and empty strings."""
  if value is None or (isinstance(value, str) and not value.strip()):
    return True
  try:
    return not math.isfinite(float(value))
  except (TypeError, ValueError):
    return False


def _significant(value: float, digits: int) -> str:
  """`value` with `digits` significant digits, without an exponent."""
  if value == 0:
    return '0'
  decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
  return f'{value:.{decimals}f}'


def format_si(value: Any, unit: str = '', digits: int = 3) -> str:
  """1234567 -> '1.23 M' + unit (decimal prefixes k, M, G, T, P)."""
  if is_missing(value):
    return MISSING
  value = float(value)
  for scale, prefix in _SI_PREFIXES:
    if abs(value) >= scale:
      return f'{_significant(value / scale, digits)} {prefix}{unit}'
  return f'{_significant(value, digits)} {unit}'.rstrip()


def format_flops(value: Any) -> str:
  """FLOPs (1 multiply-add = 2 FLOPs): 2.1e6 -> '2.10 MFLOPs'."""
  return format_si(value, 'FLOPs')


def format_count(value: Any) -> str:
  """Parameter and operation counts: exact below 10 000, else '12.3 k'."""
  if is_missing(value):
    return MISSING
  return f'{int(round(float(value))):,}' if abs(float(value)) < 1e4 else format_si(value)


def format_rate(value: Any, unit: str) -> str:
  """Per-second rates: format_rate(3.2e9, 'FLOP/s') -> '3.20 GFLOP/s'."""
  return format_si(value, unit)


def format_seconds(value: Any, digits: int = 3) -> str:
  """Seconds as ns, µs, ms, s or min, whichever keeps the number between 1 and 1000."""
  if is_missing(value):
    return MISSING
  value = float(value)
  magnitude = abs(value)
  if magnitude >= 120:
    return f'{_significant(value / 60, digits)} min'
  for scale, unit in ((1.0, 's'), (1e-3, 'ms'), (1e-6, 'µs')):
    if magnitude >= scale:
      return f'{_significant(value / scale, digits)} {unit}'
  return f'{_significant(value / 1e-9, digits)} ns'


def format_bytes(value: Any) -> str:
  """Bytes with binary prefixes: 2048 -> '2.00 KiB'."""
  if is_missing(value):
    return MISSING
  value = float(value)
  for scale, unit in ((2**40, 'TiB'), (2**30, 'GiB'), (2**20, 'MiB'), (2**10, 'KiB')):
    if abs(value) >= scale:
      return f'{_significant(value / scale, 3)} {unit}'
  return f'{int(value)} B'


def plural(count: Any, word: str) -> str:
  """'1 point', '3 points' (count formatted as a number)."""
  return f'{format_number(count)} {word}' + ('' if count == 1 else 's')


def format_percent(fraction: Any, decimals: int = 2) -> str:
  """A fraction in [0, 1] as a percentage: 0.9751 -> '97.51%'."""
  if is_missing(fraction):
    return MISSING
  return f'{100 * float(fraction):.{decimals}f}%'


def format_ratio(value: Any, digits: int = 3) -> str:
  """A dimensionless ratio: 1.8734 -> '1.87×'."""
  if is_missing(value):
    return MISSING
  return f'{_significant(float(value), digits)}×'


def format_number(value: Any, digits: int = 3) -> str:
  """A plain number with `digits` significant digits (integers stay exact)."""
  if is_missing(value):
    return MISSING
  if isinstance(value, bool):
    return str(value)
  if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
    return str(int(value))
  return _significant(float(value), digits)


def format_value(value: Any) -> str:
  """Any config or hardware value: numbers via format_number, lists joined, text as is."""
  if isinstance(value, (list, tuple)):
    return ', '.join(format_value(v) for v in value) or MISSING
  if isinstance(value, dict):
    return '; '.join(f'{k}: {format_value(v)}' for k, v in value.items()) or MISSING
  if isinstance(value, str):
    return value if value.strip() else MISSING
  if isinstance(value, float) and not is_missing(value):
    return f'{value:g}'  # config values as written: 0.003, 0.0001, 1
  return format_number(value)


def escape_cell(text: Any) -> str:
  """Text safe inside a Markdown table cell (pipes escaped, one line)."""
  return str(text).replace('|', '\\|').replace('\n', ' ').strip() or MISSING


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
  """A GitHub Markdown table; `align` holds 'l' or 'r' per column (default: left)."""
  align = align or ['l'] * len(headers)
  if len(align) != len(headers) or any(len(row) != len(headers) for row in rows):
    raise ValueError(f'markdown_table: {len(headers)} headers, {len(align)} alignments and rows '
                     f'of {sorted({len(row) for row in rows})} cells must agree.')
  rule = ['---:' if a == 'r' else '---' for a in align]
  lines = ['| ' + ' | '.join(escape_cell(h) for h in headers) + ' |',
           '| ' + ' | '.join(rule) + ' |']
  lines += ['| ' + ' | '.join(escape_cell(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def figure_block(paths: dict[str, str], report_dir: str, alt: str, caption: str) -> str:
  """An inline PNG (relative link, so it renders on GitHub), its caption and a link to the SVG."""
  png = os.path.relpath(paths['png'], report_dir).replace(os.sep, '/')
  svg = os.path.relpath(paths['svg'], report_dir).replace(os.sep, '/')
  return f'![{alt}]({png})\n\n*{caption}* ([SVG]({svg}))\n'
