"""Sweep declarations: expansion, dedup, point ids, validation, study configs, tables."""

import json
import os

import pytest

from efficiency import config as cfg
from efficiency.errors import ConfigError, WorkdirError
from efficiency.sweeps import expand, scaling, table
from efficiency.sweeps.combine import combine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def base():
  return cfg.load_config_file(os.path.join(ROOT, 'configs', 'tiny.py'))


def _overrides(points):
  return [p.overrides for p in points]


def test_product_is_cartesian_and_base_comes_first(base):
  base.sweep = [dict(study='s', method='m', product={'model.width': [4, 6], 'model.depth': [1, 2]})]
  points = expand.expand(base)
  assert points[0].is_base and points[0].memberships == (('base', 'base'),)
  assert _overrides(points[1:]) == [
      {'model.width': 4, 'model.depth': 1}, {'model.width': 4, 'model.depth': 2},
      {'model.width': 6, 'model.depth': 1}, {'model.width': 6, 'model.depth': 2}]
  assert [p.config.model.width for p in points[1:]] == [4, 4, 6, 6]
  assert all(p.config.sweep is None for p in points)


def test_zip_is_parallel_and_crossed_with_product(base):
  base.sweep = [dict(study='s', method='m', zip={'model.width': [4, 6], 'model.depth': [1, 2]},
                     product={'input.resolution': [6, 4]}, fixed={'train.epochs': 1})]
  points = expand.expand(base)[1:]
  assert [(p.config.input.resolution, p.config.model.width, p.config.model.depth)
          for p in points] == [(6, 4, 1), (6, 6, 2), (4, 4, 1), (4, 6, 2)]
  assert all(p.config.train.epochs == 1 for p in points)


def test_identical_points_are_computed_once_and_listed_in_each_study(base):
  base.sweep = [dict(study='a', method='width', product={'model.width': [4, base.model.width]}),
                dict(study='b', method='grid', product={'model.width': [4]})]
  points = expand.expand(base)
  assert len(points) == 2  # base (also a/width at the base width) and width 4
  assert points[0].memberships == (('base', 'base'), ('a', 'width'))
  assert points[1].memberships == (('a', 'width'), ('b', 'grid'))


def test_point_id_is_stable_and_changes_with_the_config_or_protocol(base):
  base.sweep = [dict(study='s', method='m', product={'input.resolution': [6]}),
                dict(study='s', method='e', protocol='evaluate', product={'input.resolution': [6]}),
                dict(study='s', method='d', protocol='distill', product={'model.width': [4]})]
  first = [p.point_id for p in expand.expand(base, '/tmp/one')]
  assert first == [p.point_id for p in expand.expand(base, '/elsewhere/two')]
  assert len(set(first)) == 4 and all(len(i) == 12 for i in first)
  distill = expand.expand(base, '/tmp/one')[3]
  assert distill.config.train.teacher_workdir == os.path.join('/tmp/one', 'points', first[0])
  base.train.epochs = 3
  changed = [p.point_id for p in expand.expand(base)]
  assert not set(first) & set(changed)


@pytest.mark.parametrize('group, words', [
    (dict(study='s', method='m', product={'model.widht': [4]}), ['sweep[1]', 'model.widht']),
    (dict(study='s', method='m', product={'train.epocs': [1]}), ['sweep[1]', 'train.epocs']),
    (dict(study='s', method='m', zip={'model.width': [4, 6], 'model.depth': [1]}),
     ['sweep[1]', 'zip', 'model.width: 2', 'model.depth: 1']),
    (dict(study='s', method='m', protocol='retrain'), ['sweep[1]', 'protocol', 'retrain']),
    (dict(study='s', method='m', protocol='evaluate', product={'model.width': [4]}),
     ['sweep[1]', 'model.width', 'evaluate']),
    (dict(study='s', method='m', product={'model.width': [0]}), ['sweep[1]', 'model.width=0']),
    (dict(study='s', method='m', product={'train.epochs': [1.5]}), ['sweep[1]', 'train.epochs']),
    (dict(study='s', method='m', colour='red'), ['sweep[1]', 'colour']),
    (dict(study='s', method='m', product={'model.width': []}), ['sweep[1]', 'model.width']),
    (dict(study='s', method='m', fixed={'train.teacher_workdir': '/x'}), ['sweep[1]', 'teacher']),
    (dict(study='base', method='m'), ['sweep[1]', 'base']),
    (dict(method='m'), ['sweep[1]', 'study']),
])
def test_validation_names_the_group_and_the_field(base, group, words):
  base.sweep = [dict(study='fine', method='m', product={'model.width': [4]}), group]
  with pytest.raises(ConfigError) as error:
    cfg.validate(base)  # the config's own validation checks the sweep
  message = str(error.value)
  assert '\n' not in message
  for word in words:
    assert word in message


def test_study_configs_expand_as_documented():
  points = {}
  for name in ('base', 'resolution', 'params', 'combined', 'all'):
    config = cfg.load_config_file(os.path.join(ROOT, 'configs', 'studies', f'{name}.py'))
    cfg.validate(config)
    points[name] = expand.expand(config)
    base_config = cfg.load_config_file(os.path.join(ROOT, 'configs', 'base.py'))
    # The base point is the base model: only its measurement settings may differ.
    assert points[name][0].config.model.to_dict() == base_config.model.to_dict()
    assert points[name][0].config.train.to_dict() == base_config.train.to_dict()
    assert points[name][0].config.input.to_dict() == base_config.input.to_dict()
  assert len(points['base']) == 1
  resolution = points['resolution'][1:]
  assert {p.protocol for p in resolution} == {'evaluate', 'train'}
  assert len({p.method for p in resolution}) >= 3
  assert len({p.config.input.resolution for p in resolution}) >= 4
  assert all(p.config.input.resolution < 8 for p in resolution)
  by_method = {}
  for p in points['params'][1:]:
    for _, method in p.memberships:
      by_method.setdefault(method, []).append(p)
  assert set(by_method) == {'width', 'depth', 'compound', 'distill'}
  assert all(len(v) >= 4 for v in by_method.values())
  assert ({p.config.model.width for p in by_method['distill']}
          == {p.config.model.width for p in by_method['width']})
  combined = points['combined']
  grid = {(p.config.input.resolution, p.config.model.width) for p in combined
          if ('combined', 'grid') in p.memberships}
  assert len(grid) == 9
  every = {p.point_id for name in ('resolution', 'params', 'combined') for p in points[name]}
  assert {p.point_id for p in points['all']} == every  # shared points computed once


def test_compound_scaling_rounds_like_efficientnet():
  assert scaling.round_depth(3 * 1.2**-6) == 2  # 1.0047 rounds up
  assert scaling.round_depth(2.0 + 1e-12) == 2
  assert scaling.round_width(18.06, 8) == 24  # 16 would be < 90% of 18.06
  assert scaling.round_width(30.0, 8) == 32
  assert scaling.compound_scale(32, 3, 0) == (32, 3)
  widths = scaling.compound_zip(32, 3, [-9, -6, -3, 3])['model.width']
  assert widths == sorted(widths) and widths[-1] > 32 > widths[0]


def _row(point_id, study='s', method='m', hardware='cpu-a-2c', **extra):
  row = dict.fromkeys(table.COLUMNS)
  row.update(point_id=point_id, study=study, method=method, status='ok', hardware_id=hardware,
             point_workdir=f'points/{point_id}')
  row.update(extra)
  return row


def test_measured_columns_from_a_record():
  record = dict(
      hardware_id='cpu-x-2c', hardware=dict(backend='cpu'), device_count=1,
      params=dict(trainable=10, non_trainable=4, trainable_bytes=40),
      flops_xla=None, flops=200.0, macs=100.0, xla_over_jaxpr=None, bytes_source='jaxpr',
      costs={'1': dict(bytes_jaxpr_per_example=50.0, xla=dict(status='unavailable',
                                                                notes=['no analysis']))},
      arithmetic_intensity=4.0, throughput=1000.0, throughput_batch=8,
      latency=dict(median=0.001, mean=0.002, n=7, outliers=1, first_call_s=0.5, compile_s=0.2))
  row = table.measured_columns(record)
  assert row['params'] == 10 and row['params_other'] == 4 and row['params_bytes'] == 40
  assert row['flops_xla'] is None and 'no analysis' in row['flops_xla_note']
  assert row['achieved_flops_per_s'] == 200.0 * 1000.0  # jaxpr FLOPs when XLA has none
  assert row['bytes_per_example'] == 50.0 and row['latency_n'] == 7
  assert row['latency_median_s'] == 0.001 and row['latency_first_call_s'] == 0.5
  assert set(row) <= set(table.COLUMNS)


def test_shard_tables_merge_without_duplicates_or_loss(tmp_path):
  workdir = str(tmp_path)
  rows_a = [_row('a'), _row('b', status='failed')]
  rows_b = [_row('b'), _row('c')]
  from efficiency import workdir as wd
  wd.write_jsonl(table.shard_path(workdir, 0, 2), rows_a)
  os.utime(table.shard_path(workdir, 0, 2), (1, 1))  # older: its 'b' is superseded
  wd.write_jsonl(table.shard_path(workdir, 1, 2), rows_b)
  order = [('c', 's', 'm'), ('a', 's', 'm'), ('b', 's', 'm')]
  merged = table.merge_shards(workdir, order)
  assert [r['point_id'] for r in merged] == ['c', 'a', 'b']
  assert merged[2]['status'] == 'ok'
  with open(tmp_path / 'results.csv') as f:
    lines = f.read().splitlines()
  assert lines[0].split(',') == list(table.COLUMNS) and len(lines) == 4


def test_combine_keeps_both_machines(tmp_path):
  from efficiency import workdir as wd
  for name, hardware in (('laptop', 'cpu-a-2c'), ('gpu', 'gpu-h100x1')):
    folder = tmp_path / name
    table.write_table(str(folder), [_row('p1', hardware=hardware), _row('p2', hardware=hardware)])
    wd.write_json(str(folder / 'sweep.json'), dict(
        name='x', base_point='p1', hardware={hardware: dict(backend=hardware[:3])},
        ceilings={hardware: dict(peak_flops_per_s=1.0, bandwidth_bytes_per_s=None)},
        studies={'s': dict(title='S', description='')}, study_seconds={'s': 1.0}))
    (folder / 'points' / 'p1').mkdir(parents=True)
  out = tmp_path / 'both'
  rows = combine([str(tmp_path / 'laptop'), str(tmp_path / 'gpu')], str(out))
  assert len(rows) == 4
  assert sorted({r['hardware_id'] for r in rows}) == ['cpu-a-2c', 'gpu-h100x1']
  meta = json.loads((out / 'sweep.json').read_text())
  assert set(meta['hardware']) == set(meta['ceilings']) == {'cpu-a-2c', 'gpu-h100x1'}
  assert len(meta['sources']) == 2
  for row in rows:
    if row['point_id'] == 'p1':
      assert os.path.isdir(os.path.join(out, row['point_workdir']))
  assert len(table.read_table(str(out))) == 4
  (tmp_path / 'empty').mkdir()
  with pytest.raises(WorkdirError, match='holds no finished sweep'):
    combine([str(tmp_path / 'laptop'), str(tmp_path / 'empty')], str(out))
