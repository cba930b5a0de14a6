r"""Trains a sweep's points in several local processes, so every CPU core is busy.

A tiny model trains on about one core, so on an N-core machine `run_sweep(...,
workers=N)` first starts N worker processes that only train (worker i takes the
points whose index % N == i), waits for them, and then runs the sweep as usual in
the calling process: every trained point is found finished and only restored,
evaluated and measured there, one at a time, so no measurement shares the
machine with training. A worker that fails leaves its points to that serial
pass, which records any error in the table.

Worker processes are started as
  python -m efficiency.sweeps.workers <config.json> <workdir> <shard> <shards> <index> <count>
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import ml_collections

from efficiency import workdir as wd
from efficiency.config import to_dict
from efficiency.errors import ConfigError, EfficiencyError

MAX_AUTO_WORKERS = 4


def auto_workers() -> int:
  """CPUs this process may use (at most MAX_AUTO_WORKERS) on the CPU backend; 1 on accelerators,
  where processes would share (and each preallocate) the device memory."""
  import jax
  if jax.default_backend() != 'cpu' or jax.process_count() > 1:
    return 1
  return max(1, min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0))))


def check_workers(workers: int) -> None:
  if not isinstance(workers, int) or not 0 <= workers <= 256:
    raise ConfigError(f'--sweep_workers={workers!r} is not allowed: expected 0 (one per CPU core, '
                      'up to 4) or a number of processes in [1, 256].')


def _die_with_parent(parent_pid: int) -> None:
  """Called first in each worker: on Linux, the kernel sends it SIGTERM when the sweep process
  dies, even by kill -9, so no orphan keeps training and holding point locks."""
  if sys.platform.startswith('linux'):
    import ctypes
    import signal
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
      sys.exit(1)


def train_in_workers(config, workdir: str, workers: int, say, *, shard_index: int = 0,
                     shard_count: int = 1) -> None:
  """Starts `workers` training processes over this shard's trained points and waits for them."""
  config_path = os.path.join(workdir, '.locks', 'worker-config.json')
  wd.write_json(config_path, to_dict(config))
  say(f'training in {workers} worker processes; measurements follow in this process, one at a '
      'time')
  env = dict(os.environ, EFFICIENCY_SWEEP_PARENT=str(os.getpid()))
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
  processes = [subprocess.Popen([sys.executable, '-m', 'efficiency.sweeps.workers', config_path,
                                 workdir, str(shard_index), str(shard_count), str(index),
                                 str(workers)], env=env)
               for index in range(workers)]
  try:
    for index, process in enumerate(processes):
      if process.wait() != 0:
        say(f'worker {index} exited with status {process.returncode}; its points are trained in '
            'this process instead.')
  finally:  # interrupted: stop the workers too (finished points stay saved)
    for process in processes:
      if process.poll() is None:
        process.terminate()
    for process in processes:
      process.wait()


def _train_points(config, workdir: str, shard: tuple[int, int], index: int, count: int) -> None:
  from efficiency import training
  from efficiency.sweeps import point as point_module
  from efficiency.sweeps.expand import expand, point_dir
  from efficiency.sweeps.point import WORKER_FILE
  points = expand(config, workdir)
  base = points[0]
  in_shard = [p for i, p in enumerate(points) if i % shard[1] == shard[0]]
  mine = [p for i, p in enumerate(in_shard) if i % count == index and p.protocol != 'evaluate'
          and not point_module.is_finished(workdir, p)]
  cache = point_module.InputsCache()
  started = time.perf_counter()
  for number, point in enumerate(mine, 1):
    folder = point_dir(workdir, point.point_id)
    start = time.perf_counter()
    try:
      if point.protocol == 'distill':
        point_module.train_base(base, workdir, cache)
      already = os.path.exists(os.path.join(folder, 'result.json'))
      result = training.train(point.config, folder, inputs=cache.get(point.config),
                              wait_for_lock=True)
      if not already:
        wd.write_json(os.path.join(folder, WORKER_FILE),
                      dict(worker=index, wall_s=time.perf_counter() - start))
      line = f'accuracy {result["test"]["accuracy"]:.4f}'
    except EfficiencyError as e:
      line = f'failed ({e}); the measuring pass records it'
    elapsed = time.perf_counter() - started
    print(f'[worker {index}: {number}/{len(mine)}] trained {point.label()}: {line}, '
          f'{time.perf_counter() - start:.1f}s; elapsed {elapsed:.0f}s, left '
          f'~{elapsed / number * (len(mine) - number):.0f}s', flush=True)


def main(argv: list[str]) -> None:
  config_path, workdir, shard_index, shard_count, index, count = argv[1:7]
  if os.environ.get('EFFICIENCY_SWEEP_PARENT'):
    _die_with_parent(int(os.environ['EFFICIENCY_SWEEP_PARENT']))
  from efficiency import cpu_runtime
  cpu_runtime.configure()  # before JAX starts its backend
  from efficiency.cli import enable_compilation_cache
  enable_compilation_cache()
  config = ml_collections.ConfigDict(wd.read_json(config_path))
  try:
    _train_points(config, workdir, (int(shard_index), int(shard_count)), int(index), int(count))
  except KeyboardInterrupt:
    sys.exit(130)


if __name__ == '__main__':
  main(sys.argv)
