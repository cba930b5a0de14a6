"""What every entry point shares: common flags, JAX set-up, logging, and one-line errors.

An `EfficiencyError` (bad config, missing file, locked workdir, ...) is printed
as one line `error: ...` on stderr with exit status 2 and no traceback, unless
`--verbose` asks for one. Ctrl-C exits with status 130 after finished work is saved.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable

from absl import app, flags, logging

from efficiency.errors import EfficiencyError

WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and results.')
VERBOSE = flags.DEFINE_bool('verbose', False, 'Show tracebacks for errors.')
COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-host: host:port of process 0 for jax.distributed.')
NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-host: number of processes.')
PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-host: index of this process.')
DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Call jax.distributed.initialize() (auto-detects SLURM, TPU pods, ...) '
    'even without --coordinator_address.')


def cache_dir() -> str:
  """Where compiled XLA programs persist between runs ($EFFICIENCY_CACHE or ~/.cache/efficiency)."""
  return os.path.join(os.environ.get('EFFICIENCY_CACHE', os.path.expanduser('~/.cache/efficiency')),
                      'jax')


def setup_jax() -> None:
  """Persistent compilation cache, optional jax.distributed, then log the devices."""
  import jax
  jax.config.update('jax_compilation_cache_dir', cache_dir())
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  if COORDINATOR.value or DISTRIBUTED.value:
    jax.distributed.initialize(coordinator_address=COORDINATOR.value,
                               num_processes=NUM_PROCESSES.value, process_id=PROCESS_ID.value)
  logging.info('JAX %s, backend %s, process %d of %d, devices: %s', jax.__version__,
               jax.default_backend(), jax.process_index(), jax.process_count(),
               ', '.join(f'{d.platform}:{d.id} {d.device_kind}' for d in jax.devices()))


def log_config(config) -> None:
  logging.info('Config:\n%s', config)


def require_workdir() -> str:
  if not WORKDIR.value:
    raise EfficiencyError('--workdir is required: the directory for results (created if missing).')
  return WORKDIR.value


def run(main: Callable[[], None]) -> None:
  """absl's app.run around `main`, turning user errors into one line and an exit status."""

  def wrapped(argv):
    if len(argv) > 1:
      print(f'error: unexpected arguments {argv[1:]}; flags are written --name=value.',
            file=sys.stderr)
      sys.exit(2)
    try:
      main()
    except EfficiencyError as e:
      if VERBOSE.value:
        traceback.print_exc()
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    except KeyboardInterrupt:
      print('interrupted: finished epochs and sweep points are saved; rerun the same command to '
            'resume.', file=sys.stderr)
      sys.exit(130)

  app.run(wrapped)
