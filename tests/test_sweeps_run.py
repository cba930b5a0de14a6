"""The sweep runner: a real tiny sweep (train, evaluate, distill, measure), a failed point, resume,
shards and their merge, and benchmark of a trained workdir."""

import json
import os

import pytest

from efficiency import config as cfg
from efficiency import workdir as wd
from efficiency.sweeps import expand, point as point_module, runner, single, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(tfds_dir, sweep):
  config = cfg.load_config_file(os.path.join(ROOT, 'configs', 'tiny.py'))
  config.dataset.data_dir = tfds_dir
  config.train.epochs = 1
  config.model.width = 4
  config.measure.update(batch_size=8, fixed_calls=3, warmup_calls=0, per_layer=False)
  config.sweep = sweep
  return config


@pytest.fixture
def counted_compute(monkeypatch):
  """Wraps point.compute to record which point ids were computed."""
  computed = []
  original = point_module.compute

  def compute(point, *args, **kwargs):
    computed.append(point.point_id)
    return original(point, *args, **kwargs)

  monkeypatch.setattr(point_module, 'compute', compute)
  return computed


@pytest.fixture
def no_report(monkeypatch):
  import efficiency.report
  monkeypatch.setattr(efficiency.report, 'write_report',
                      lambda workdir: os.path.join(workdir, 'report', 'report.md'))


def test_sweep_records_a_failure_goes_on_and_resumes(tfds_dir, tmp_path, monkeypatch,
                                                    counted_compute, no_report):
  sweep = [dict(study='params', method='width', product={'model.width': [6, 5]}),
           dict(study='resolution', method='area', protocol='evaluate',
                product={'input.resolution': [6]}),
           dict(study='params', method='distill', protocol='distill', product={'model.width': [6]})]
  config = _tiny(tfds_dir, sweep)
  workdir = str(tmp_path / 'sweep')
  points = expand.expand(config, workdir)
  base, width6, width5, evaluate, distill = points
  original_measure = point_module._measure

  def measure(model, inputs, point_config):
    if point_config.model.width == 5:
      raise RuntimeError('simulated measurement failure\nsecond line')
    return original_measure(model, inputs, point_config)

  monkeypatch.setattr(point_module, '_measure', measure)
  monkeypatch.setenv('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')  # in the worker processes too
  # Two worker processes train; this process evaluates and measures (so the fake failure applies).
  rows = runner.run_sweep(config, workdir, workers=2, command='test')
  for p in points:
    trained_by_worker = os.path.exists(os.path.join(workdir, 'points', p.point_id, 'worker.json'))
    assert trained_by_worker == (p.protocol != 'evaluate')
  assert [r['point_id'] for r in rows] == [p.point_id for p in points]
  status = {r['point_id']: r['status'] for r in rows}
  assert status[width5.point_id] == 'failed'
  assert [s for pid, s in status.items() if pid != width5.point_id] == ['ok'] * 4
  failed = next(r for r in rows if r['status'] == 'failed')
  assert failed['error'] == 'RuntimeError: simulated measurement failure'
  ok = {r['point_id']: r for r in rows if r['status'] == 'ok'}
  assert ok[evaluate.point_id]['resolution'] == 6 and ok[base.point_id]['resolution'] == 8
  assert ok[evaluate.point_id]['protocol'] == 'evaluate'
  assert ok[evaluate.point_id]['train_seconds'] is None
  assert ok[width6.point_id]['params'] > ok[base.point_id]['params']  # width 6 > 4
  for row in ok.values():
    assert 0.0 <= row['accuracy'] <= 1.0 and row['latency_n'] == 3
    assert row['flops_jaxpr'] > 0 and row['hardware_id']
    assert os.path.exists(os.path.join(workdir, row['point_workdir'], 'measure.json'))
  assert wd.read_json(os.path.join(workdir, 'points', distill.point_id, 'config.json'))[
      'train']['teacher_workdir'] == os.path.join(workdir, 'points', base.point_id)
  assert table.read_table(workdir) == rows
  meta = wd.read_json(os.path.join(workdir, 'sweep.json'))
  assert meta['base_point'] == base.point_id and meta['command'] == 'test'
  assert meta['train_workers'] == 2
  assert meta['dataset']['test_examples'] == 360 and meta['dataset']['metric'] == 'top-1 accuracy'
  assert set(meta['studies']) == {'base', 'params', 'resolution'}
  assert meta['methods']['distill'] and meta['methods']['area']
  assert set(meta['hardware']) == {ok[base.point_id]['hardware_id']}
  assert meta['stage_seconds']['base']['compile'] > 0 and meta['study_seconds']['params'] > 0
  assert 'cnn' in meta['model_families']

  # Rerun without the failure, after deleting one finished point: only it and the failed
  # point are computed; the others keep their files untouched.
  monkeypatch.setattr(point_module, '_measure', original_measure)
  kept = {p.point_id: os.path.getmtime(os.path.join(workdir, 'points', p.point_id, 'stages.json'))
          for p in (base, evaluate, distill)}
  import shutil
  shutil.rmtree(os.path.join(workdir, 'points', width6.point_id))
  counted_compute.clear()
  rows = runner.run_sweep(config, workdir, command='test')
  assert sorted(counted_compute) == sorted([width6.point_id, width5.point_id])
  assert all(r['status'] == 'ok' for r in rows) and len(rows) == 5
  for pid, mtime in kept.items():
    assert os.path.getmtime(os.path.join(workdir, 'points', pid, 'stages.json')) == mtime

  # A trained point's workdir is a training workdir: benchmark.py --workdir measures it.
  record = single.benchmark_workdir(os.path.join(workdir, 'points', base.point_id))
  assert record['weights'] == 'trained'
  assert record['accuracy'] == pytest.approx(ok[base.point_id]['accuracy'])
  assert record['measure']['latency']['n'] == 3
  saved = wd.read_json(os.path.join(workdir, 'points', base.point_id, 'benchmark.json'))
  assert saved['row']['params'] == ok[base.point_id]['params']


def _fake_compute(point, base, workdir, cache):
  """Writes the files of a finished point without training (for shard bookkeeping tests)."""
  folder = expand.point_dir(workdir, point.point_id)
  test = dict(accuracy=0.5, loss=1.0)
  shape = [point.config.input.resolution or 8, point.config.input.resolution or 8, 1]
  if point.protocol == 'evaluate':
    wd.write_json(os.path.join(folder, 'eval.json'), dict(test, input_shape=shape))
  else:
    wd.write_json(os.path.join(folder, 'result.json'),
                  dict(test=test, input_shape=shape, train_seconds=1.0))
  wd.write_json(os.path.join(folder, 'measure.json'), dict(
      hardware_id='cpu-fake-2c', hardware=dict(backend='cpu'), device_count=1,
      params=dict(trainable=point.config.model.width), flops=1.0, latency=dict(n=3)))
  stages = dict(train=1.0, measure=0.5, total=1.5)
  wd.write_json(os.path.join(folder, 'stages.json'), stages)
  return stages


def test_shards_together_equal_the_unsharded_sweep(tfds_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(point_module, 'compute', _fake_compute)
  import efficiency.report

  def failing_report(workdir):
    raise RuntimeError('no plots today')

  monkeypatch.setattr(efficiency.report, 'write_report', failing_report)
  sweep = [dict(study='params', method='width', product={'model.width': [5, 6, 7]}),
           dict(study='resolution', method='area', protocol='evaluate',
                product={'input.resolution': [6, 4]}),
           dict(study='combined', method='grid', product={'model.width': [6, 9]})]
  config = _tiny(tfds_dir, sweep)
  whole = runner.run_sweep(config, str(tmp_path / 'whole'))
  sharded = str(tmp_path / 'sharded')
  first = runner.run_sweep(config, sharded, shard_index=0, shard_count=2)
  rows = runner.run_sweep(config, sharded, shard_index=1, shard_count=2)
  keys = [table.row_key(r) for r in whole]
  assert len(keys) == len(set(keys)) == 8  # 7 points, width 6 in two studies
  assert len(first) < len(rows)  # the first shard merged only its own rows
  assert [table.row_key(r) for r in rows] == keys
  shard_ids = [{r['point_id'] for r in wd.read_jsonl(table.shard_path(sharded, i, 2))}
               for i in range(2)]
  assert not shard_ids[0] & shard_ids[1]
  assert shard_ids[0] | shard_ids[1] == {r['point_id'] for r in whole}
  with open(os.path.join(sharded, 'results.csv')) as f:
    assert len(f.read().splitlines()) == 1 + len(keys)
  with pytest.raises(Exception, match='sweep_shard=2'):
    runner.run_sweep(config, sharded, shard_index=2, shard_count=2)
  assert json.loads(open(os.path.join(sharded, 'sweep.json')).read())['points'] == 7
