"""Runs a sweep: every point trained (or evaluated), measured and written to the results table.

`run_sweep(config, workdir)` computes the points in order, base point first.
A rerun skips finished points (their files are present, see efficiency.sweeps.point),
so an interrupted sweep resumes and a changed point (a new point_id) is
computed. A point that raises is recorded as 'failed' with its reason and the
sweep goes on. With `shard_count` = n, shard i takes the points whose index % n
== i; shards may run at once on several machines sharing the workdir: each
locks its own shard, the base model is trained once (the point workdir's lock
makes a second shard wait and reuse it), and each writes
results.shard-<i>-of-<n>.jsonl, then merges every shard file present into
results.jsonl/csv under a merge lock.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from absl import logging

from efficiency import workdir as wd
from efficiency.config import validate
from efficiency.errors import ConfigError, EfficiencyError, describe
from efficiency.sweeps import metadata, point as point_module, table, workers as workers_module
from efficiency.sweeps.expand import Point, expand


def _lock_dir(workdir: str, name: str) -> str:
  return os.path.join(workdir, '.locks', name)


def _check_shards(shard_index: int, shard_count: int) -> None:
  if not isinstance(shard_count, int) or shard_count < 1:
    raise ConfigError(f'--sweep_shards={shard_count!r} is not allowed: expected an integer >= 1.')
  if not isinstance(shard_index, int) or not 0 <= shard_index < shard_count:
    raise ConfigError(f'--sweep_shard={shard_index!r} is not allowed: expected an integer in '
                      f'[0, {shard_count - 1}] (--sweep_shards={shard_count}).')


def _duration(seconds: float) -> str:
  return f'{seconds / 60:.1f}min' if seconds >= 120 else f'{seconds:.1f}s'


def _say(line: str) -> None:
  if wd.is_primary():
    print(line, flush=True)


def _time_left(seconds_by_kind: dict[bool, list[float]], remaining: list[Point]) -> float:
  """Mean seconds of computed points of the same kind (evaluate or train) times those left."""
  every = seconds_by_kind[True] + seconds_by_kind[False]
  overall = sum(every) / len(every) if every else 0.0
  left = 0.0
  for p in remaining:
    same = seconds_by_kind[p.protocol == 'evaluate']
    left += sum(same) / len(same) if same else overall
  return left


def _process_count() -> int:
  import jax
  return jax.process_count()


def _table_order(points: list[Point]) -> list[tuple[str, str, str]]:
  return [(p.point_id, study, method) for p in points for study, method in p.memberships]


def _merge(workdir: str, points: list[Point]) -> list[dict]:
  with wd.locked(_lock_dir(workdir, 'merge'), wait=True):
    return table.merge_shards(workdir, _table_order(points))


def _finish(config, workdir: str, points: list[Point], cache: point_module.InputsCache,
            command: str, workers: int | None, run_seconds: float) -> list[dict]:
  """Merges the shard tables, writes sweep.json and the report."""
  rows = _merge(workdir, points)
  dataset = cache.get(points[0].config, with_train=False).dataset
  with wd.locked(_lock_dir(workdir, 'merge'), wait=True):
    meta = metadata.build(config, workdir, points, dataset=dataset, command=command)
    if workers is None:  # none started now: the points were trained as the last run said
      previous = os.path.join(workdir, 'sweep.json')
      workers = wd.read_json(previous).get('train_workers', 1) if os.path.exists(previous) else 1
    meta.update(train_workers=workers, run_seconds=run_seconds)
    metadata.write(workdir, meta)
  _print_times(meta)
  try:
    from efficiency.report import write_report
    path = write_report(workdir)
    _say(f'report: {path}')
  except Exception as e:  # noqa: BLE001 - the results stay; the reason is shown
    _say(f'the report could not be written ({describe(e)}); the results are in '
         f'{os.path.join(workdir, "results.csv")}.')
  return rows


def _print_times(meta: dict[str, Any]) -> None:
  if meta['train_workers'] > 1:
    _say(f'time per study (its points\' own times; {meta["train_workers"]} workers trained at once, '
         'so these overlap):')
  for study, seconds in meta['study_seconds'].items():
    stages = ', '.join(f'{k} {v:.1f}s' for k, v in meta['stage_seconds'].get(study, {}).items())
    _say(f'study {study}: {_duration(seconds)} ({stages})')


def run_sweep(config, workdir: str, *, shard_index: int = 0, shard_count: int = 1,
              workers: int = 1, command: str | None = None) -> list[dict]:
  """Computes this shard's points, merges the table, writes sweep.json and the report.

  `workers` > 1 trains in that many local processes first (efficiency.sweeps.workers);
  0 picks one per CPU core. Returns the merged results table (a list of row dicts,
  columns table.COLUMNS).
  """
  validate(config)
  _check_shards(shard_index, shard_count)
  workers_module.check_workers(workers)
  workdir = wd.ensure_writable(workdir)
  command = command or ' '.join(['python'] + sys.argv)
  points = expand(config, workdir)
  base = points[0]
  mine = [p for index, p in enumerate(points) if index % shard_count == shard_index]
  cache = point_module.InputsCache()
  own_table = table.shard_path(workdir, shard_index, shard_count)
  with wd.locked(_lock_dir(workdir, f'shard-{shard_index}-of-{shard_count}')):
    _say(f'sweep {config.name}: {len(points)} points'
         + (f', {len(mine)} in shard {shard_index} of {shard_count}' if shard_count > 1 else '')
         + f'; workdir {workdir}')
    start = time.perf_counter()
    workers = workers or workers_module.auto_workers()
    started_workers = None
    if workers > 1 and _process_count() > 1:
      raise ConfigError(f'--sweep_workers={workers} is not allowed in a multi-process job: '
                        'expected 1 (each process already has its own devices).')
    if workers > 1 and any(not point_module.is_finished(workdir, p) and p.protocol != 'evaluate'
                           for p in mine):
      cache.get(base.config, with_train=False)  # prepares the dataset once, before the workers
      workers_module.train_in_workers(config, workdir, workers, _say, shard_index=shard_index,
                                      shard_count=shard_count)
      started_workers = workers
      _say(f'training done in {_duration(time.perf_counter() - start)}; restoring, evaluating and '
           'measuring each point')
    rows_by_point: dict[str, list[dict]] = {}
    seconds_by_kind: dict[bool, list[float]] = {True: [], False: []}  # evaluate point or not
    for number, point in enumerate(mine, 1):
      reused = point_module.is_finished(workdir, point)
      point_start = time.perf_counter()
      if not reused:
        _say(f'[{number}/{len(mine)}] {point.label()} ({point.point_id}) ...')
      try:
        if not reused:
          point_module.compute(point, base, workdir, cache)
        rows = point_module.rows_from_files(point, workdir)
        status = 'reused' if reused else 'ok'
      except KeyboardInterrupt:
        raise
      except Exception as e:  # noqa: BLE001 - recorded in the table with its reason
        if not isinstance(e, EfficiencyError):
          logging.exception('Point %s failed', point.point_id)
        rows = point_module.failed_rows(point, describe(e))
        status = f'FAILED: {describe(e).rstrip(".")}'
      rows_by_point[point.point_id] = rows
      wd.write_jsonl(own_table, [row for p in mine for row in rows_by_point.get(p.point_id, [])])
      _merge(workdir, points)
      seconds = time.perf_counter() - point_start
      if not reused:
        seconds_by_kind[point.protocol == 'evaluate'].append(seconds)
      left = _time_left(seconds_by_kind, [p for p in mine[number:]
                                          if not point_module.is_finished(workdir, p)])
      accuracy = rows[0].get('accuracy')
      _say(f'[{number}/{len(mine)}] {point.label()}: {status}'
           + (f', accuracy {accuracy:.4f}' if accuracy is not None else '')
           + f', {seconds:.1f}s; elapsed {_duration(time.perf_counter() - start)}, '
           f'left ~{_duration(left)}')
    rows = _finish(config, workdir, points, cache, command, started_workers,
                   time.perf_counter() - start)
    failed = [r for r in rows if r['status'] != 'ok']
    _say(f'sweep done in {_duration(time.perf_counter() - start)}: {len(rows)} rows, '
         f'{len(failed)} failed; table {os.path.join(workdir, "results.csv")}')
  return rows
