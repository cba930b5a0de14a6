"""Interruptions and determinism through the entry points: a training run killed (SIGKILL) and
interrupted (SIGINT) resumes to the result of an uninterrupted run; the same config twice gives the
same accuracy, parameters and FLOPs, and latency within its spread; a sweep killed mid-run resumes
without recomputing finished points, records a diverging point as failed and reports it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from efficiency import workdir as wd
from efficiency.data import load_dataset
from test_cli import ROOT, TINY, error_line, run_entry
from test_reliability import tiny_config

EPOCHS = 12


def start_entry(script: str, *args: str, new_session: bool = False) -> subprocess.Popen:
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_DISABLE_MOST_OPTIMIZATIONS='true',
             EFFICIENCY_CACHE=os.environ.get('EFFICIENCY_CACHE', os.path.join(
                 ROOT, '.pytest_cache', 'efficiency')))
  return subprocess.Popen([sys.executable, os.path.join(ROOT, script), *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=new_session)


def wait_until(condition, process: subprocess.Popen, timeout: float = 120) -> None:
  """Polls `condition` while `process` runs; fails if it ends or the time is up first."""
  deadline = time.monotonic() + timeout
  while not condition():
    if process.poll() is not None:
      pytest.fail(f'the process ended first (status {process.returncode}): '
                  f'{process.stderr.read()[-2000:]}')
    if time.monotonic() > deadline:
      process.kill()
      pytest.fail('timed out waiting')
    time.sleep(0.05)


def finish(process: subprocess.Popen, timeout: float = 180) -> tuple[str, str]:
  stdout, stderr = process.communicate(timeout=timeout)
  assert process.returncode == 0, stderr[-3000:]
  return stdout, stderr


def checkpoint_epochs(workdir: str) -> list[int]:
  folder = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(folder):
    return []
  return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


def test_killed_and_interrupted_training_resumes_to_the_same_result(tfds_dir, tmp_path):
  args = (f'--config={TINY}', f'--config.dataset.data_dir={tfds_dir}',
          f'--config.train.epochs={EPOCHS}',
          '--config.measure.fixed_calls=0', '--config.measure.min_calls=50',
          '--config.measure.max_time_s=0.5', '--config.measure.per_layer=False')
  first, second, resumed = (str(tmp_path / name) for name in ('first', 'second', 'resumed'))
  load_dataset(tiny_config(tfds_dir).dataset)  # prepared once, not by three processes at once
  uninterrupted = [start_entry('train.py', *args, f'--workdir={w}') for w in (first, second)]

  run = start_entry('train.py', *args, f'--workdir={resumed}')
  wait_until(lambda: checkpoint_epochs(resumed), run)
  run.send_signal(signal.SIGKILL)
  run.communicate()
  assert run.returncode == -signal.SIGKILL
  killed_at = max(checkpoint_epochs(resumed))
  assert killed_at < EPOCHS and not os.path.exists(os.path.join(resumed, 'result.json'))

  run = start_entry('train.py', *args, f'--workdir={resumed}')
  wait_until(lambda: max(checkpoint_epochs(resumed)) > killed_at + 1, run)
  run.send_signal(signal.SIGINT)
  _, stderr = run.communicate(timeout=120)
  assert run.returncode == 130, stderr[-3000:]
  assert stderr.strip().splitlines()[-1].startswith('interrupted:') and 'Traceback' not in stderr
  interrupted_at = max(checkpoint_epochs(resumed))
  assert killed_at < interrupted_at < EPOCHS

  stdout, _ = finish(start_entry('train.py', *args, f'--workdir={resumed}'))
  assert 'test accuracy' in stdout
  for process in uninterrupted:
    finish(process)
  results = {w: wd.read_json(os.path.join(w, 'result.json')) for w in (first, second, resumed)}
  losses = {w: [r['loss'] for r in wd.read_jsonl(os.path.join(w, 'metrics.jsonl'))]
            for w in (first, second, resumed)}
  assert results[resumed]['resumed_from_epoch'] == interrupted_at
  assert len(losses[resumed]) == EPOCHS
  # Determinism: the same config twice gives identical metrics; the resumed run the same ones.
  assert results[first]['test'] == results[second]['test']
  assert losses[first] == losses[second]
  assert results[resumed]['test']['accuracy'] == results[first]['test']['accuracy']
  assert results[resumed]['test']['confusion_matrix'] == results[first]['test']['confusion_matrix']
  assert losses[resumed] == pytest.approx(losses[first], rel=1e-6)

  from efficiency.sweeps import single
  records = [single.benchmark_workdir(w)['row'] for w in (first, second)]
  for column in ('accuracy', 'params', 'params_bytes', 'flops_jaxpr', 'macs', 'flops_xla'):
    assert records[0][column] == records[1][column], column
  assert records[0]['params'] > 0 and records[0]['flops_jaxpr'] > 0
  # Latency is measured, not reproduced: on a shared 2-core machine the median of the same
  # sub-millisecond model moves by up to ~2.3x between processes (benchmarks/RESULTS.md), which
  # the two runs' p10-p90 spread did not always cover (0.225 vs 0.133 ms once). Within 3x of
  # each other still catches a record that times the wrong thing.
  medians = [r['latency_median_s'] for r in records]
  assert all(m > 0 for m in medians) and max(medians) <= 3 * min(medians), medians


SWEEP_CONFIG = '''"""A three-point sweep to kill and resume: benchmark.py --config=<this file>."""
from configs import tiny


def get_config():
  config = tiny.get_config()
  config.dataset.data_dir = {data_dir!r}
  config.train.epochs = 1
  config.model.width = 4
  config.measure.update(batch_size=8, fixed_calls=3, warmup_calls=0, per_layer=False)
  config.sweep = [
      dict(study='params', method='width', product={{'model.width': [6]}},
           fixed={{'train.epochs': 3}}),
      dict(study='params', method='diverging', product={{'model.width': [5]}},
           fixed={{'train.optimizer': 'sgd', 'train.learning_rate': 10.0,
                  'train.weight_decay': 1.0, 'train.schedule': 'constant'}}),
  ]
  return config
'''


def point_files(workdir: str, name: str) -> dict[str, int]:
  """{point id: mtime in ns} of the points whose workdir holds `name`."""
  points = os.path.join(workdir, 'points')
  found = {}
  for point_id in os.listdir(points) if os.path.isdir(points) else []:
    path = os.path.join(points, point_id, name)
    if os.path.exists(path):
      found[point_id] = os.stat(path).st_mtime_ns
  return found


def test_killed_sweep_resumes_without_recomputing_finished_points(tfds_dir, tmp_path):
  config_file = tmp_path / 'sweep_config.py'
  config_file.write_text(SWEEP_CONFIG.format(data_dir=tfds_dir))
  workdir = str(tmp_path / 'sweep')
  args = (f'--config={config_file}', f'--workdir={workdir}')

  # Its own session: SIGKILL goes to the sweep and the training workers it may have started,
  # as when a job is killed as a whole.
  sweep = start_entry('benchmark.py', *args, new_session=True)
  lock = os.path.join(workdir, '.locks', 'shard-0-of-1', '.lock')
  wait_until(lambda: os.path.exists(lock) and os.path.getsize(lock) > 0, sweep)
  line = error_line(run_entry('benchmark.py', *args), only_line=False)
  assert 'is in use by process' in line and str(sweep.pid) in line
  wait_until(lambda: point_files(workdir, 'result.json'), sweep)
  os.killpg(sweep.pid, signal.SIGKILL)
  sweep.communicate()
  assert sweep.returncode == -signal.SIGKILL
  trained = point_files(workdir, 'result.json')
  measured = point_files(workdir, 'stages.json')
  assert trained and len(measured) < 3
  results = os.path.join(workdir, 'results.jsonl')
  if os.path.exists(results):   # whole rows only: every write replaced it
    written = wd.read_jsonl(results)
    # A finished point has its row; the diverging point, if the sweep got that far before the
    # kill, has a failed row and no stages.json.
    assert sorted(r['point_id'] for r in written if r['status'] == 'ok') == sorted(measured)
    assert all(r['status'] == 'failed' and r['method'] == 'diverging'
               for r in written if r['status'] != 'ok')

  finish(start_entry('benchmark.py', *args))
  rows = wd.read_jsonl(results)
  assert len(rows) == 3 and {r['point_id'] for r in rows} == set(os.listdir(
      os.path.join(workdir, 'points')))
  assert {k: v for k, v in point_files(workdir, 'result.json').items() if k in trained} == trained
  assert {k: v for k, v in point_files(workdir, 'stages.json').items() if k in measured} == measured
  by_method = {r['method']: r for r in rows}
  assert by_method['base']['status'] == by_method['width']['status'] == 'ok'
  failed = by_method['diverging']
  assert failed['status'] == 'failed' and failed['accuracy'] is None
  assert 'training diverged' in failed['error']
  assert 'config.train.learning_rate=10.0' in failed['error']
  with open(os.path.join(workdir, 'results.csv')) as f:
    assert len(f.read().strip().splitlines()) == 1 + len(rows)
  with open(os.path.join(workdir, 'report', 'report.md')) as f:
    report = f.read()
  assert '1 failed' in report and 'Failed points' in report and 'training diverged' in report
