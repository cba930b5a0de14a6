"""One sweep point: train it (or evaluate the base model on its inputs), measure it, write files.

A point's workdir `points/<point_id>/` holds, besides the training files of
efficiency.training (config.json, checkpoints/, metrics.jsonl, result.json):
eval.json (evaluate points: the base model's metrics on the point's inputs),
measure.json (the full measurement record), worker.json (when a worker process
trained it: its wall time) and stages.json (seconds per stage), written last: a
point is finished when stages.json exists beside them. Its results-table rows
are rebuilt from these files alone.
"""

from __future__ import annotations

import collections
import json
import os
import time

from efficiency import training
from efficiency import workdir as wd
from efficiency.config import to_dict
from efficiency.errors import EfficiencyError, WorkdirError
from efficiency.stages import StageTimer
from efficiency.sweeps import table
from efficiency.sweeps.expand import Point, point_dir


WORKER_FILE = 'worker.json'  # written by efficiency.sweeps.workers beside a point it trained


class InputsCache:
  """Preprocessed inputs by (dataset, input) settings, so points that share them prepare once.

  Keeps the `capacity` most recently used; data.load_dataset caches the raw dataset itself.
  """

  def __init__(self, capacity: int = 4):
    self.capacity = capacity
    self._entries: collections.OrderedDict[str, training.Inputs] = collections.OrderedDict()

  def get(self, config, *, with_train: bool = True) -> training.Inputs:
    key = json.dumps(dict(dataset=to_dict(config.dataset), input=to_dict(config.input)),
                     sort_keys=True)
    for candidate in ((key, True), (key, False)) if not with_train else ((key, True),):
      name = json.dumps(candidate)
      if name in self._entries:
        self._entries.move_to_end(name)
        return self._entries[name]
    inputs = training.prepare_inputs(config, with_train=with_train)
    self._entries[json.dumps((key, with_train))] = inputs
    while len(self._entries) > self.capacity:
      self._entries.popitem(last=False)
    return inputs


def _done_files(point: Point) -> tuple[str, ...]:
  quality = 'eval.json' if point.protocol == 'evaluate' else 'result.json'
  return (quality, 'measure.json', 'stages.json')


def is_finished(workdir: str, point: Point) -> bool:
  folder = point_dir(workdir, point.point_id)
  return all(os.path.exists(os.path.join(folder, name)) for name in _done_files(point))


def relative_point_dir(point: Point) -> str:
  return os.path.join('points', point.point_id)


def train_base(base: Point, workdir: str, cache: InputsCache) -> dict:
  """The base point's training result, training it first if no shard has (waits for one that is)."""
  try:
    return training.train(base.config, point_dir(workdir, base.point_id),
                          inputs=cache.get(base.config), wait_for_lock=True)
  except EfficiencyError as e:
    raise type(e)(f'the base model (point {base.point_id}) could not be trained: {e}') from e


def _measure(trained_model, inputs: training.Inputs, config) -> dict:
  from efficiency.measure import measure_model
  return measure_model(trained_model, tuple(inputs.input_shape), settings=config.measure,
                       throughput_batch=config.measure.batch_size,
                       per_layer=config.measure.per_layer)


def _check_point_config(folder: str, point: Point) -> None:
  path = os.path.join(folder, 'config.json')
  if os.path.exists(path) and wd.read_json(path) != to_dict(point.config):
    raise WorkdirError(f'{path} holds another config than point {point.point_id}; delete '
                       f'{folder} to recompute it.')
  wd.write_json(path, to_dict(point.config))


def compute(point: Point, base: Point, workdir: str, cache: InputsCache) -> dict[str, float]:
  """Trains or evaluates, then measures `point`; writes its files; returns seconds per stage."""
  folder = point_dir(workdir, point.point_id)
  timer = StageTimer()
  start = time.perf_counter()
  if point.protocol == 'evaluate':
    base_result = train_base(base, workdir, cache)
    with timer('data'):
      inputs = cache.get(point.config, with_train=False)
    _check_point_config(folder, point)
    with timer('checkpoint'):
      trained = training.load_trained(point_dir(workdir, base.point_id), inputs.num_classes,
                                      inputs.input_shape[-1], base.config)
    with timer('evaluate'):
      metrics = training.evaluate_model(trained.model, inputs, point.config.train.eval_batch_size)
    wd.write_json(os.path.join(folder, 'eval.json'), dict(
        model_workdir=os.path.join('..', base.point_id), epoch=trained.epoch,
        base_accuracy=base_result['test']['accuracy'], input=to_dict(point.config.input),
        input_shape=list(inputs.input_shape), dataset=point.config.dataset.name,
        split=point.config.dataset.test_split, **metrics))
  else:
    if point.protocol == 'distill':
      train_base(base, workdir, cache)
    with timer('data'):
      inputs = cache.get(point.config)
    result = training.train(point.config, folder, inputs=inputs, wait_for_lock=True)
    for stage, seconds in result.get('stage_seconds', {}).items():
      timer.add(stage, seconds)
    with timer('checkpoint'):
      trained = training.load_trained(folder, inputs.num_classes, inputs.input_shape[-1],
                                      point.config)
  with timer('measure'):
    record = _measure(trained.model, inputs, point.config)
  wd.write_json(os.path.join(folder, 'measure.json'), record)
  total = time.perf_counter() - start
  worker_file = os.path.join(folder, WORKER_FILE)
  if point.protocol != 'evaluate' and os.path.exists(worker_file):
    total += float(wd.read_json(worker_file)['wall_s'])  # trained by a worker process
  # Model construction, file writes, waiting for the base model: what no stage timed.
  stages = dict(timer.seconds, other=max(0.0, total - sum(timer.seconds.values())), total=total)
  wd.write_json(os.path.join(folder, 'stages.json'), stages)
  return stages


def rows_from_files(point: Point, workdir: str) -> list[dict]:
  """The finished point's table rows, one per (study, method) that declared it."""
  folder = point_dir(workdir, point.point_id)
  if point.protocol == 'evaluate':
    evaluation = wd.read_json(os.path.join(folder, 'eval.json'))
    test, shape, train_seconds = evaluation, evaluation['input_shape'], None
  else:
    result = wd.read_json(os.path.join(folder, 'result.json'))
    test, shape, train_seconds = result['test'], result['input_shape'], result.get('train_seconds')
  record = wd.read_json(os.path.join(folder, 'measure.json'))
  stages = wd.read_json(os.path.join(folder, 'stages.json'))
  return [table.ok_row(point, study, method, relative_point_dir(point), test=test,
                       resolution=shape[0], record=record, train_seconds=train_seconds,
                       measure_seconds=stages.get('measure'))
          for study, method in point.memberships]


def failed_rows(point: Point, reason: str) -> list[dict]:
  return [table.failed_row(point, study, method, relative_point_dir(point), reason)
          for study, method in point.memberships]
