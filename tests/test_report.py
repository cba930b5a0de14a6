"""write_report on a synthetic sweep workdir that follows the contract: sections, figures, numbers."""

import json
import os
import re

import numpy as np
import pytest

from efficiency.errors import WorkdirError
from efficiency.report import formatting as fmt
from efficiency.report import markdown, plots

CPU, GPU = 'cpu-test-2c', 'gpu-test-x1'
STUDY_TITLES = {'resolution': 'Input resolution', 'params': 'Width and depth',
                'combined': 'Resolution x size'}
FAILED_REASON = 'DivergenceError: the training loss became NaN at epoch 2.'


def _row(point_id, study, method, protocol, *, resolution=8, width=32, depth=3, accuracy=0.95,
         hardware_id=CPU, status='ok', seconds_per_flop=2e-11):
  macs = width * width * depth * resolution * resolution + 10 * width
  flops = 2.0 * macs
  # Latency is not proportional to FLOPs: a fixed overhead plus a depth term, so ranks can differ.
  median = (20e-6 + depth * 15e-6) * (1 if hardware_id == CPU else 0.2) + flops * seconds_per_flop
  row = dict(point_id=point_id, study=study, method=method, protocol=protocol,
             overrides=json.dumps({'input.resolution': resolution, 'model.width': width}),
             status=status, error='' if status == 'ok' else FAILED_REASON,
             point_workdir=('' if hardware_id == CPU else 'gpu/') + f'points/{point_id}',
             hardware_id=hardware_id,
             backend=hardware_id.split('-')[0], device_count=1, dataset='digits', model='cnn',
             width=width, depth=depth, resolution=resolution, resize='area', antialias=True,
             epochs=2, seed=0, accuracy=accuracy, test_loss=1.0 - accuracy, params=macs // 10,
             params_other=0, params_bytes=4 * (macs // 10), flops_xla=flops * 1.01,
             flops_jaxpr=flops, macs=macs, flops_ratio=1.01, flops_xla_note='',
             bytes_per_example=macs / 5, bytes_source='xla', arithmetic_intensity=10.1,
             latency_median_s=median, latency_mean_s=median * 1.05, latency_std_s=median * 0.1,
             latency_min_s=median * 0.8, latency_max_s=median * 3, latency_q1_s=median * 0.9,
             latency_q3_s=median * 1.2, latency_iqr_s=median * 0.3, latency_p10_s=median * 0.85,
             latency_p90_s=median * 1.5, latency_p99_s=median * 2.5, latency_outliers=3,
             latency_n=200, latency_first_call_s=median * 40, compile_s=0.25,
             throughput_batch=64, throughput_per_s=0.5 / median,
             achieved_flops_per_s=flops * 0.5 / median, train_seconds=3.0, measure_seconds=1.0)
  if status != 'ok':
    row.update(accuracy=None, test_loss=None, latency_median_s=None)
  return row


def _rows():
  rows = [_row('b' * 12, 'base', 'base', 'train', accuracy=0.9733),
          _row('b' * 12, 'base', 'base', 'train', accuracy=0.9733, hardware_id=GPU,
               seconds_per_flop=1e-12)]
  n = 0
  for method in ('area', 'nearest'):
    for protocol in ('evaluate', 'train'):
      for resolution in (6, 4):
        n += 1
        accuracy = 0.97 - (8 - resolution) * (0.05 if protocol == 'evaluate' else 0.01) - n * 1e-3
        rows.append(_row(f'r{n:011d}', 'resolution', method, protocol, resolution=resolution,
                         accuracy=accuracy))
  for method, protocol, width, depth in (('width', 'train', 16, 3), ('width', 'train', 8, 3),
                                         ('depth', 'train', 32, 2), ('depth', 'train', 32, 1),
                                         ('distill', 'distill', 8, 3)):
    n += 1
    rows.append(_row(f'p{n:011d}', 'params', method, protocol, width=width, depth=depth,
                     accuracy=0.9 + width / 1000 + depth / 200))
  rows.append(_row('f' * 12, 'params', 'width', 'train', width=64, status='failed'))
  # The base point is also a member of the params study (width 32 = the base width).
  rows.append(_row('b' * 12, 'params', 'width', 'train', accuracy=0.9733))
  for hardware_id, speed in ((CPU, 2e-11), (GPU, 1e-12)):
    for resolution, width in ((6, 16), (4, 8), (6, 8)):
      rows.append(_row(f'c{resolution}{width:02d}{"0" * 8}', 'combined', 'grid', 'train',
                       resolution=resolution, width=width, accuracy=0.85 + resolution * width / 1000,
                       hardware_id=hardware_id, seconds_per_flop=speed))
  return rows


def _sweep_json():
  hardware = {CPU: {'cpu_model': 'Test CPU 9000', 'cpu_physical_cores': 2, 'usable_cores': 2,
                    'cpu_signature': {'family': '25', 'model': '1', 'simd': 'avx2'},
                    'ram_bytes': 8 * 2**30, 'os': 'Linux', 'versions': {'jax': '0.10.2',
                                                                         'flax': '0.12.8'},
                    'backend': 'cpu', 'devices': [{'id': 0, 'platform': 'cpu', 'kind': 'cpu'}]},
              GPU: {'cpu_model': 'Host CPU', 'backend': 'gpu', 'versions': {'jax': '0.10.2'},
                    'devices': [{'id': 0, 'platform': 'gpu', 'kind': 'Test GPU',
                                 'memory_bytes': 80 * 2**30}]}}
  return {
      'name': 'synthetic-sweep', 'command': 'python benchmark.py --config=x --workdir=y',
      'base_point': 'b' * 12,
      'studies': {k: {'title': v, 'description': f'What {v.lower()} does.'}
                  for k, v in STUDY_TITLES.items()},
      'methods': {'area': 'Averages each output pixel over its input area.',
                  'nearest': 'Cheapest: picks one pixel, aliases.',
                  'width': 'Fewer channels per layer.', 'depth': 'Fewer layers.',
                  'distill': 'Small model taught by the base model.', 'grid': 'Both at once.'},
      'dataset': {'name': 'digits', 'description': 'Handwritten digits, 8x8.',
                  'citation': '@misc{digits, title={Optical Recognition of Handwritten Digits}}',
                  'homepage': 'https://example.org/digits', 'train_examples': 1437,
                  'test_examples': 360, 'num_classes': 10, 'image_shape': [8, 8, 1],
                  'split': 'test', 'metric': 'top-1 accuracy'},
      'model_families': {'cnn': {'title': 'CNN', 'paper': 'LeCun et al. 1998',
                                 'citation': '@article{lecun1998}', 'description': 'Conv stack.'}},
      'base_config': {'seed': 0, 'model': {'name': 'cnn', 'width': 32, 'depth': 3},
                      'input': {'resolution': None, 'resize': 'area'},
                      'train': {'optimizer': 'adamw', 'learning_rate': 0.003, 'schedule': 'cosine',
                                'warmup_epochs': 1.0, 'epochs': 30, 'batch_size': 64,
                                'weight_decay': 0.0001, 'label_smoothing': 0.0}},
      'hardware': hardware,
      'ceilings': {CPU: {'peak_flops_per_s': 5e10, 'bandwidth_bytes_per_s': 1e10}},
      'stage_seconds': {'resolution': {'train': 12.5, 'measure': 4.25}},
      'study_seconds': {'base': 9.5, 'resolution': 17.0, 'params': 11.0, 'combined': 8.0},
  }


def write_workdir(path, rows=None, meta=None, samples=True):
  """A sweep workdir per the contract: results.jsonl, results.csv, sweep.json, base measure.json."""
  rows = _rows() if rows is None else rows
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, 'results.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  import pandas as pd
  pd.DataFrame(rows).to_csv(os.path.join(path, 'results.csv'), index=False)
  with open(os.path.join(path, 'sweep.json'), 'w') as f:
    json.dump(_sweep_json() if meta is None else meta, f)
  rng = np.random.default_rng(0)
  for row in rows:
    if samples and row['study'] == 'base' and row['status'] == 'ok':
      median = row['latency_median_s']
      record = {'latency': {'samples_s': list(median * rng.lognormal(0, 0.1, 200)),
                            'first_call_s': row['latency_first_call_s'], 'median': median},
                'throughput_timing': {'samples_s': [1.0, 2.0], 'first_call_s': 9.0}}
      folder = os.path.join(path, row['point_workdir'])
      os.makedirs(folder, exist_ok=True)
      with open(os.path.join(folder, 'measure.json'), 'w') as f:
        json.dump(record, f)
  return str(path)


@pytest.fixture(scope='module')
def report(tmp_path_factory):
  """(workdir, report text, rows handed to plot_study per study) for the synthetic sweep."""
  workdir = write_workdir(tmp_path_factory.mktemp('sweep'))
  plotted = {}
  original = plots.plot_study

  def recording(rows, base, **kwargs):
    plotted[kwargs['study']] = (rows.copy(), base.copy())
    return original(rows, base, **kwargs)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(plots, 'plot_study', recording)
    path = markdown.write_report(workdir)
  assert path == os.path.join(workdir, 'report', 'report.md')
  with open(path) as f:
    return workdir, f.read(), plotted


def _section(text, heading):
  """The text from `heading` up to the next heading of the same or a higher level."""
  level = heading.split(' ')[0]
  start = text.index(heading + '\n')
  rest = text[start + len(heading):]
  ends = [m.start() for m in re.finditer(r'^#{1,%d} ' % len(level), rest, flags=re.M)]
  return rest[:ends[0]] if ends else rest


def test_report_has_every_section(report):
  _, text, _ = report
  for heading in ['# Efficiency report: synthetic-sweep', '## Hardware', '## Task and data',
                  '## Base model', '### Hyperparameters', '### Results', '### Latency distribution',
                  '## Pareto front and best trade-off under a budget',
                  '## Where FLOPs and latency disagree', '## Why these methods', '## Roofline',
                  '## Wall time'] + [f'## Study: {t}' for t in STUDY_TITLES.values()]:
    assert re.search('^' + re.escape(heading) + '$', text, flags=re.M), heading
  assert '## Study: base' not in text


def test_figures_exist_and_links_resolve(report):
  workdir, text, _ = report
  figures = os.path.join(workdir, 'report', 'figures')
  for study in STUDY_TITLES:
    for plot in plots.STUDY_PLOTS:
      for extension in ('png', 'svg'):
        path = os.path.join(figures, f'{study}_{plot}.{extension}')
        assert os.path.getsize(path) > 1000, path
  links = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', text)
  assert len(links) == 3 * len(STUDY_TITLES) + 3  # + latency trace, histogram, roofline
  for link in links + re.findall(r'\[SVG\]\(([^)]+)\)', text):
    assert not os.path.isabs(link)
    assert os.path.isfile(os.path.join(workdir, 'report', link)), link


def test_numbers_come_from_the_table(report):
  _, text, _ = report
  base = _section(text, '## Base model')
  cpu_base = _row('b' * 12, 'base', 'base', 'train', accuracy=0.9733)
  assert fmt.format_percent(0.9733) in base
  assert fmt.format_flops(cpu_base['flops_xla']) in base
  assert fmt.format_seconds(cpu_base['latency_median_s']) in base
  assert fmt.format_ratio(cpu_base['latency_first_call_s'] / cpu_base['latency_median_s']) in base
  assert 'Test CPU 9000' in _section(text, '## Hardware')
  assert '| CPU identity | family: 25; model: 1; simd: avx2 |' in _section(text, '## Hardware')
  assert '1 multiply-add as 2 FLOPs' in base
  assert '17.0 s' in _section(text, '## Wall time')  # study_seconds of sweep.json
  assert 'Fewer channels per layer.' in _section(text, '## Why these methods')


def test_failed_point_listed_and_left_out(report):
  _, text, plotted = report
  study = _section(text, '## Study: Width and depth')
  failed = _section(study, '### Failed points')
  assert '`ffffffffffff`' in failed and FAILED_REASON in failed
  assert 'ffffffffffff' not in _section(study, '### Points')
  rows, _ = plotted['params']
  assert 'ffffffffffff' not in set(rows['point_id']) and len(rows) == 6
  assert (rows['status'] == 'ok').all()


def test_latency_is_compared_per_machine(report):
  _, text, plotted = report
  rows, base = plotted['combined']
  assert set(rows['hardware_id']) == {CPU, GPU} and set(base['hardware_id']) == {CPU, GPU}
  results = _section(text, '### Results')
  assert f'| metric | `{CPU}` | `{GPU}` |' in results.splitlines()  # one column per machine
  agreement = _section(text, '## Where FLOPs and latency disagree')
  assert agreement.count(f'`{GPU}` | FLOPs vs latency') == 1
  assert agreement.count(f'`{CPU}` | FLOPs vs latency') == 1
  combined = _section(text, '## Study: Resolution x size')
  assert '| machine |' in combined.replace('Pareto-optimal by | machine', '| machine')
  gpu_row = _row('c616' + '0' * 8, 'combined', 'grid', 'train', resolution=6, width=16,
                 hardware_id=GPU, seconds_per_flop=1e-12)
  assert fmt.format_seconds(gpu_row['latency_median_s']) in combined


def test_budget_choice_is_the_best_point_within_half_the_base_cost(report):
  _, text, _ = report
  tradeoff = _section(text, '## Pareto front and best trade-off under a budget')
  rows = [r for r in _rows() if r['status'] == 'ok' and r['hardware_id'] == CPU]
  base = rows[0]
  fitting = [r for r in rows if r['flops_xla'] <= 0.5 * base['flops_xla']]
  best = max(fitting, key=lambda r: (r['accuracy'], -r['flops_xla']))
  line = next(l for l in tradeoff.splitlines() if l.startswith(f'| `{CPU}` | FLOPs'))
  assert f'`{best["point_id"]}`' in line and fmt.format_percent(best['accuracy']) in line


def test_roofline_without_ceilings_and_missing_samples(tmp_path):
  rows = [r for r in _rows() if r['study'] in ('base', 'params') and r['hardware_id'] == CPU]
  meta = dict(_sweep_json(), ceilings={}, studies={'params': {'title': 'Size'}})
  workdir = write_workdir(tmp_path, rows, meta, samples=False)
  with open(markdown.write_report(workdir)) as f:
    text = f.read()
  assert 'ceilings not measured' in _section(text, '## Roofline')
  assert 'measure.json does not exist' in _section(text, '### Latency distribution')
  assert not os.path.exists(os.path.join(workdir, 'report', 'figures', 'base_latency_trace.png'))


def test_unreadable_workdir_raises_workdir_error(tmp_path):
  with pytest.raises(WorkdirError, match='sweep.json'):
    markdown.write_report(str(tmp_path))
  with open(tmp_path / 'sweep.json', 'w') as f:
    json.dump(_sweep_json(), f)
  with pytest.raises(WorkdirError, match='results.jsonl nor results.csv'):
    markdown.write_report(str(tmp_path))


def test_csv_only_workdir_reads_the_same_numbers(tmp_path):
  rows = [r for r in _rows() if r['study'] in ('base', 'params') and r['hardware_id'] == CPU]
  workdir = write_workdir(tmp_path, rows, dict(_sweep_json(), studies={'params': {'title': 'Size'}}))
  os.remove(os.path.join(workdir, 'results.jsonl'))
  with open(markdown.write_report(workdir)) as f:
    text = f.read()
  assert fmt.format_percent(0.9733) in _section(text, '## Base model')
  failed = _section(_section(text, '## Study: Size'), '### Failed points')
  assert '`ffffffffffff`' in failed and FAILED_REASON in failed
  assert 'model.width=64' in failed  # the overrides JSON survived the CSV round trip
