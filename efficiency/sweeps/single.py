"""Benchmark of one model (no sweep): a trained workdir, or a config's model with random weights.

Both write `<workdir>/benchmark.json` with the same fields:
  weights       'trained' or 'random'
  workdir       the workdir
  config        the resolved config
  input_shape   [H, W, C] measured
  accuracy, test_loss   from the workdir's eval.json / result.json (None for random weights)
  accuracy_source       the file they came from, or why there is none
  row           the results-table columns (efficiency.sweeps.table.COLUMNS) that apply
  measure       the full measure_model record (raw latency samples included)
"""

from __future__ import annotations

import os
from typing import Any

from efficiency import training
from efficiency import workdir as wd
from efficiency.config import to_dict, validate
from efficiency.errors import WorkdirError
from efficiency.sweeps import table


def _measure(model, input_shape, config) -> dict:
  """The single-device record; with several devices, also the data-parallel one (`data_parallel`)."""
  import jax
  from efficiency.measure import measure_data_parallel, measure_model
  record = measure_model(model, tuple(input_shape), settings=config.measure,
                         throughput_batch=config.measure.batch_size,
                         per_layer=config.measure.per_layer)
  count = jax.device_count()
  if count > 1:
    batch = -(-config.measure.batch_size // count) * count  # rounded up to divide by the devices
    try:
      record['data_parallel'] = measure_data_parallel(model, tuple(input_shape), batch_size=batch,
                                                      settings=config.measure)
    except Exception as error:  # noqa: BLE001 - recorded with its reason, not swallowed
      record['data_parallel'] = None
      record['data_parallel_error'] = f'{type(error).__name__}: {error}'
  return record


def _record(workdir: str, config, weights: str, input_shape, measured: dict,
            test: dict | None, accuracy_source: str) -> dict[str, Any]:
  row = table.measured_columns(measured)
  row.update(dataset=config.dataset.name, model=config.model.name, width=config.model.width,
             depth=config.model.depth, resolution=int(input_shape[0]),
             resize=config.input.resize, antialias=config.input.antialias,
             epochs=config.train.epochs if weights == 'trained' else None, seed=config.seed,
             accuracy=None if test is None else test.get('accuracy'),
             test_loss=None if test is None else test.get('loss'))
  return dict(weights=weights, workdir=workdir, config=to_dict(config),
              input_shape=list(input_shape), accuracy=row['accuracy'], test_loss=row['test_loss'],
              accuracy_source=accuracy_source, row=row, measure=measured)


def _saved_test_metrics(workdir: str) -> tuple[dict | None, str]:
  for name, key in (('eval.json', None), ('result.json', 'test')):
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      value = wd.read_json(path)
      return (value if key is None else value[key]), name
  return None, 'no eval.json or result.json: the run has not finished'


def benchmark_workdir(workdir: str) -> dict[str, Any]:
  """Measures the trained model of a training workdir; writes and returns benchmark.json."""
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if os.path.exists(os.path.join(workdir, 'sweep.json')):
    raise WorkdirError(f'--workdir={workdir} is a sweep workdir: its measurements are in '
                       'results.csv; pass --config=<the sweep config> to resume it.')
  config = training.load_config(workdir)
  inputs = training.prepare_inputs(config, with_train=False)
  trained = training.load_trained(workdir, inputs.num_classes, inputs.input_shape[-1], config)
  with wd.locked(workdir):  # no training or evaluation may write here meanwhile
    measured = _measure(trained.model, inputs.input_shape, config)
    test, source = _saved_test_metrics(workdir)
    record = _record(workdir, config, 'trained', inputs.input_shape, measured, test, source)
    wd.write_json(os.path.join(workdir, 'benchmark.json'), record)
  return record


def benchmark_config(config, workdir: str) -> dict[str, Any]:
  """Measures the model of `config` with random (seeded) weights; writes and returns
  <workdir>/benchmark.json. The dataset is read for its shape and classes only."""
  validate(config)
  workdir = wd.ensure_writable(workdir)
  inputs = training.prepare_inputs(config, with_train=False)
  model = training.build_model(config, inputs.num_classes, inputs.input_shape[-1])
  model.eval()
  measured = _measure(model, inputs.input_shape, config)
  record = _record(workdir, config, 'random', inputs.input_shape, measured, None,
                   'random weights: accuracy not measured')
  wd.write_json(os.path.join(workdir, 'benchmark.json'), record)
  return record


def format_accuracy(record: dict[str, Any]) -> str:
  """One line on the accuracy that goes with the measurement."""
  if record['accuracy'] is None:
    return f'accuracy: none ({record["accuracy_source"]})'
  return (f'test accuracy (top-1): {record["accuracy"]:.4f} (from {record["accuracy_source"]}, '
          f'{record["weights"]} weights)')
