r"""Measures a model (accuracy, parameters, FLOPs, latency), or runs a sweep of them.

  python benchmark.py --workdir=runs/base                                  # a trained run
  python benchmark.py --config=configs/base.py --workdir=runs/random       # random weights
  python benchmark.py --config=configs/studies/all.py --workdir=runs/default   # a sweep
  python benchmark.py --config=configs/studies/all.py --workdir=runs/default \
      --sweep_shard=0 --sweep_shards=2                                     # half of it
  python benchmark.py --combine=runs/laptop,runs/gpu --workdir=runs/both   # several machines

A single model's record goes to <workdir>/benchmark.json; a sweep writes
results.csv, sweep.json and report/report.md (see WORKSPACE.md). Rerunning a
sweep resumes it: finished points are not computed again.
"""

import os
import sys

from absl import flags
from ml_collections import config_flags

from efficiency import cli
from efficiency.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file: a sweep config runs the sweep; any other config is measured with '
    'random weights. Without it, --workdir must hold a trained run.', lock_config=True)
_SHARD = flags.DEFINE_integer('sweep_shard', 0, 'Index of this shard of the sweep points.')
_SHARDS = flags.DEFINE_integer('sweep_shards', 1, 'Number of shards the sweep is split into.')
_WORKERS = flags.DEFINE_integer(
    'sweep_workers', 0, 'Local processes that train sweep points at once (measurements stay one at '
    'a time in this process); 0 = one per CPU core (up to 4) on CPU, 1 on GPU/TPU.')
_COMBINE = flags.DEFINE_list('combine', None, 'Comma-separated sweep workdirs to combine into '
                             '--workdir (e.g. one per machine).')


def _command() -> str:
  return ' '.join(['python', os.path.basename(sys.argv[0])] + sys.argv[1:])


def main() -> None:
  from efficiency import sweeps
  from efficiency.sweeps import single
  workdir = cli.require_workdir()
  config = _CONFIG.value
  sharded = _SHARDS.value != 1 or _SHARD.value != 0
  if _COMBINE.value:
    if config is not None or sharded:
      raise ConfigError('--combine is not allowed with --config or --sweep_shard(s): it only '
                        'merges finished sweep workdirs.')
    rows = sweeps.combine(_COMBINE.value, workdir, command=_command())
    print(f'combined {len(rows)} rows from {len(_COMBINE.value)} workdirs into {workdir}')
    return
  if sharded and (config is None or config.sweep is None):
    raise ConfigError('--sweep_shard/--sweep_shards need --config with a sweep (config.sweep).')
  cli.setup_jax()
  from efficiency.measure import format_summary
  if config is not None and config.sweep is not None:
    cli.log_config(config)
    sweeps.run_sweep(config, workdir, shard_index=_SHARD.value, shard_count=_SHARDS.value,
                     workers=_WORKERS.value, command=_command())
    return
  if config is not None:
    cli.log_config(config)
    record = single.benchmark_config(config, workdir)
  else:
    record = single.benchmark_workdir(workdir)
  print(format_summary(record['measure']))
  print(single.format_accuracy(record))
  print(f'written: {os.path.join(os.path.abspath(workdir), "benchmark.json")}')


if __name__ == '__main__':
  cli.run(main)
