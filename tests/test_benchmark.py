"""benchmark.py as a user runs it: random weights from a config, and one-line errors."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, cwd=ROOT):
  env = dict(os.environ, JAX_PLATFORMS='cpu', EFFICIENCY_CACHE=os.environ.get(
      'EFFICIENCY_CACHE', os.path.join(ROOT, '.pytest_cache', 'efficiency')))
  return subprocess.run([sys.executable, os.path.join(ROOT, 'benchmark.py'), *args], cwd=cwd,
                        env=env, capture_output=True, text=True, timeout=300)


def test_benchmark_config_with_random_weights(tfds_dir, tmp_path):
  workdir = tmp_path / 'random'
  done = _run('--config=' + os.path.join(ROOT, 'configs', 'tiny.py'), f'--workdir={workdir}',
              f'--config.dataset.data_dir={tfds_dir}', '--config.measure.per_layer=False',
              '--config.measure.batch_size=4')
  assert done.returncode == 0, done.stderr[-2000:]
  record = json.loads((workdir / 'benchmark.json').read_text())
  assert record['weights'] == 'random' and record['accuracy'] is None
  assert record['input_shape'] == [8, 8, 1]
  assert record['measure']['latency']['n'] == 5  # configs/tiny.py: fixed_calls=5
  assert len(record['measure']['latency']['samples_s']) == 5
  assert record['row']['params'] > 0 and record['row']['flops_jaxpr'] > 0
  assert record['row']['width'] == 8 and record['config']['model']['width'] == 8
  assert 'benchmark.json' in done.stdout and 'accuracy: none' in done.stdout


def test_bad_flags_are_one_line_errors(tmp_path):
  done = _run('--config=' + os.path.join(ROOT, 'configs', 'tiny.py'), f'--workdir={tmp_path}',
              '--sweep_shard=1', '--sweep_shards=2')
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert lines[-1].startswith('error: --sweep_shard') and 'config.sweep' in lines[-1]
  assert 'Traceback' not in done.stderr
