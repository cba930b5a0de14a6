"""Combines sweep workdirs from several machines into one table and one sweep.json.

Rows are concatenated (hardware_id tells machines apart; a row that appears
twice with the same point, study, method and hardware is kept once), each
row's point_workdir is rewritten relative to the combined workdir, and the
sweep.json dicts that describe machines (hardware, ceilings) are merged. The
other sweep.json fields come from the first workdir; `sources` lists every
input workdir with its own times.
"""

from __future__ import annotations

import os
from typing import Any

from efficiency import workdir as wd
from efficiency.errors import WorkdirError
from efficiency.sweeps import table

_MERGED_DICTS = ('studies', 'methods', 'model_families', 'hardware', 'ceilings')


def _read_sweep(workdir: str) -> tuple[list[dict], dict[str, Any]]:
  meta_path = os.path.join(workdir, 'sweep.json')
  rows_path = os.path.join(workdir, 'results.jsonl')
  if not os.path.isdir(workdir):
    raise WorkdirError(f'--combine workdir {workdir} does not exist.')
  if not os.path.exists(meta_path) or not os.path.exists(rows_path):
    raise WorkdirError(f'--combine workdir {workdir} holds no finished sweep (sweep.json and '
                       'results.jsonl); run benchmark.py --config=<sweep config> there first.')
  return table.read_table(workdir), wd.read_json(meta_path)


def combine(workdirs: list[str], out_workdir: str, *, command: str = '') -> list[dict]:
  """Writes out_workdir/results.jsonl, results.csv and sweep.json; returns the rows."""
  if not workdirs:
    raise WorkdirError('--combine is empty: expected a comma-separated list of sweep workdirs.')
  out_workdir = wd.ensure_writable(out_workdir)
  sources = [os.path.abspath(os.path.expanduser(w)) for w in workdirs]
  if out_workdir in sources:
    raise WorkdirError(f'--workdir={out_workdir} is also in --combine: write the combined sweep '
                       'to a new workdir.')
  rows: list[dict] = []
  seen: set[tuple] = set()
  combined: dict[str, Any] = {}
  for source in sources:
    source_rows, meta = _read_sweep(source)
    for row in source_rows:
      key = (*table.row_key(row), row.get('hardware_id'))
      if key in seen:
        continue
      seen.add(key)
      if row.get('point_workdir'):
        row = dict(row, point_workdir=os.path.relpath(
            os.path.join(source, row['point_workdir']), out_workdir))
      rows.append(row)
    if not combined:
      combined = {k: (dict(v) if isinstance(v, dict) else v) for k, v in meta.items()}
      combined['sources'] = []
    else:
      for key in _MERGED_DICTS:
        merged = dict(meta.get(key) or {})
        merged.update(combined.get(key) or {})
        combined[key] = merged
    combined['sources'].append(dict(
        workdir=source, command=meta.get('command'), hardware=sorted(meta.get('hardware') or {}),
        stage_seconds=meta.get('stage_seconds'), study_seconds=meta.get('study_seconds')))
  combined['command'] = command or combined.get('command')
  table.write_table(out_workdir, rows)
  wd.write_json(os.path.join(out_workdir, 'sweep.json'), combined)
  return rows
