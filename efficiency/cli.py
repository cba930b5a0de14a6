"""What every entry point shares: flags, the config flag, JAX set-up, logging, one-line errors.

An `EfficiencyError` (bad config, bad flag or override, missing file, locked
workdir, ...) is printed as one line `error: ...` on stderr with exit status 2
and no traceback, unless `--verbose` asks for one. Flags are parsed here, not by
absl's default parser, so an unknown flag, a malformed or unknown
`--config.<field>=` override or a missing `--config` file is such a line too.
Ctrl-C (or SIGTERM) exits with status 130 after finished work is saved.
"""

from __future__ import annotations

import difflib
import logging as logging_std
import os
import re
import signal
import sys
import traceback
from typing import Any, Callable

from absl import app, flags, logging
from ml_collections import config_flags

from efficiency import config as config_schema
from efficiency import paths
from efficiency.errors import ConfigError, EfficiencyError, describe, first_line

WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and results.')
VERBOSE = flags.DEFINE_bool('verbose', False, 'Show tracebacks for errors.')
COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-host: host:port of process 0 for jax.distributed.')
NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-host: number of processes.')
PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-host: index of this process.')
DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Call jax.distributed.initialize() (auto-detects SLURM, TPU pods, ...) '
    'even without --coordinator_address.')

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
# Errors raised while defining the config flag (ml_collections already parses the overrides
# of a default config file then), reported by `run` as one line.
_DEFINITION_ERRORS: list[BaseException] = []
_DEFAULT_CONFIG_FILE: list[str] = []


def define_config(default: str | None, help_string: str) -> Any:
  """`--config=FILE` (a file with `get_config()`) and its `--config.<field>=value` overrides.

  Returns the flag holder (`.value` is the ConfigDict), or None when the overrides
  are already invalid here, which `run` then reports as one line.
  """
  if default is not None:
    _DEFAULT_CONFIG_FILE.append(default)
  try:
    return config_flags.DEFINE_config_file('config', default, help_string, lock_config=True)
  except Exception as e:  # noqa: BLE001 - reported by run() before anything else happens
    _DEFINITION_ERRORS.append(e)
    return None


def require_config(holder) -> Any:
  """The validated config of `--config`; ConfigError when it is missing or has a bad field."""
  config = None if holder is None else holder.value
  if config is None:
    raise ConfigError('--config is required: a config file such as configs/base.py.')
  config_schema.validate(config)
  return config


def cache_dir() -> str:
  """Where compiled XLA programs persist between runs ($EFFICIENCY_CACHE or ~/.cache/efficiency)."""
  return os.path.join(paths.cache_root(), 'jax')


class _QuietLibraries(logging_std.Filter):
  """Drops INFO lines of orbax and TFDS (dozens per checkpoint); their warnings still show."""
  NOISY = (f'{os.sep}orbax{os.sep}', f'{os.sep}tensorflow_datasets{os.sep}')

  def filter(self, record: logging_std.LogRecord) -> bool:
    return record.levelno >= logging_std.WARNING or not any(
        part in record.pathname for part in self.NOISY)


def enable_compilation_cache() -> None:
  """Every compiled XLA program persists in cache_dir(), so a rerun or a sweep worker compiles
  each shape once."""
  import jax
  jax.config.update('jax_compilation_cache_dir', cache_dir())
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def setup_jax() -> None:
  """Quiet library logs, persistent compilation cache, optional jax.distributed, then log the
  devices."""
  from efficiency import cpu_runtime
  tuned = cpu_runtime.configure()  # before JAX starts its backend; see efficiency/cpu_runtime.py
  import jax
  logging.get_absl_handler().addFilter(_QuietLibraries())
  logging.info('CPU runtime settings: %s', tuned)
  enable_compilation_cache()
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


def _config_file_arg(argv: list[str]) -> str | None:
  """The FILE of `--config=FILE[:args]` (or `--config FILE`) in argv, else None."""
  for index, arg in enumerate(argv[1:], 1):
    match = re.fullmatch(r'--?config(?:=(.*))?', arg, re.S)
    if match:
      value = match.group(1)
      if value is None:
        value = argv[index + 1] if index + 1 < len(argv) else ''
      return value.split(':', 1)[0]
  return None


def _config_overrides(argv: list[str]) -> list[tuple[str, str]]:
  """(argument, dotted field) of every `--config.<field>[=value]` in argv."""
  overrides = []
  for arg in argv[1:]:
    match = re.fullmatch(r'--?(?:no)?config\.([^=]+)(?:=.*)?', arg, re.S)
    if match:
      overrides.append((arg, match.group(1)))
  return overrides


def check_config_file(path: str) -> None:
  if not os.path.isfile(path):
    raise ConfigError(f'--config={path} does not exist: expected a config file with get_config(), '
                      'such as configs/base.py.')


def _unknown_override(arg: str, path: str, config_file: str, fields: list[str]) -> str:
  close = difflib.get_close_matches(path, fields, n=1, cutoff=0.6)
  hint = f' (did you mean config.{close[0]}?)' if close else ''
  return (f'{arg} is not allowed: config.{path} is not a field of {config_file}{hint}; the fields '
          'are listed in efficiency/config.py SCHEMA.')


def explain_flag_error(error: BaseException, argv: list[str], default_config: str | None) -> str:
  """One line naming the flag or `--config.` override that `error` (from flag parsing) is about."""
  if isinstance(error, EfficiencyError):
    return first_line(str(error))
  config_file = _config_file_arg(argv) or default_config
  if isinstance(error, flags.UnrecognizedFlagError):
    name = error.flagname
    if name.startswith('config.') and config_file is None:
      return f'--{name} needs --config=FILE before it: the config file whose field it overrides.'
    suggestion = re.search(r'Did you mean: (.*?) \?', str(error))
    hint = f' (did you mean --{suggestion.group(1)}?)' if suggestion else ''
    return f'--{name} is not a known flag{hint}; see --helpfull for the flags.'
  if config_file is not None:
    check_config_file(config_file)
    try:
      config = config_schema.load_config_file(config_file)
    except EfficiencyError as e:
      return first_line(str(e))
    except Exception as e:  # noqa: BLE001 - a user's config file can raise anything
      return f'--config={config_file} cannot be loaded ({describe(e)}); --verbose shows where.'
    for arg, path in _config_overrides(argv):
      if not config_schema.is_field(config, path):
        fields = [field for field, _ in config_schema.iter_fields(config)]
        return _unknown_override(arg, path, config_file, fields)
  match = re.match(r'flag --([^=\s]+)=(.*?): (.*)', str(error), re.S)
  if isinstance(error, flags.IllegalFlagValueError) and match:
    name, value, reason = match.group(1), match.group(2), first_line(match.group(3))
    if name.startswith('config.'):
      field = name[len('config.'):]
      schema = config_schema.SCHEMA
      allowed = (schema[field].allowed if field in schema
                 else 'a value of the type in the config file')
      if value.lower() == 'none':
        reason = 'None cannot be given on the command line; set it in a config file'
      return f'--config.{field}={value} is not allowed: expected {allowed} ({reason}).'
    if name == 'config':
      last = [line.strip() for line in str(error).splitlines() if line.strip()][-1]
      return f'--config={value} cannot be loaded ({last}); --verbose shows where.'
    return f'--{name}={value} is not allowed: {reason}.'
  return f'the command line cannot be parsed ({describe(error)}); --verbose shows where.'


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing; any bad flag, config file or override raises ConfigError (one line)."""
  config_file = _config_file_arg(argv)
  if config_file is not None:
    check_config_file(config_file)
  default_config = _DEFAULT_CONFIG_FILE[0] if _DEFAULT_CONFIG_FILE else None
  if _DEFINITION_ERRORS:
    error = _DEFINITION_ERRORS[0]
    raise ConfigError(explain_flag_error(error, argv, default_config)) from error
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # noqa: BLE001 - every parse failure is the user's command line
    raise ConfigError(explain_flag_error(e, argv, default_config)) from e


def _verbose_requested(argv: list[str]) -> bool:
  return any(re.fullmatch(r'--?verbose(=(true|1|yes))?', arg, re.I) for arg in argv[1:])


def _exit_with(error: BaseException, verbose: bool) -> None:
  if verbose:
    traceback.print_exception(error)
  if isinstance(error, OSError) and not isinstance(error, EfficiencyError):
    where = f' ({error.filename})' if error.filename else ''
    message = f'{error.strerror or describe(error)}{where}.'
  else:
    message = str(error)
  print(f'error: {message}', file=sys.stderr)
  sys.exit(EXIT_USER_ERROR)


def _parse_flags_or_exit(argv: list[str]) -> list[str]:
  try:
    return parse_flags(argv)
  except EfficiencyError as e:
    _exit_with(e, _verbose_requested(argv))


def _raise_keyboard_interrupt(signum, frame) -> None:
  raise KeyboardInterrupt


def run(main: Callable[[], None]) -> None:
  """absl's app.run around `main`, turning user errors into one line and an exit status."""

  def wrapped(argv):
    if len(argv) > 1:
      print(f'error: unexpected arguments {argv[1:]}; flags are written --name=value.',
            file=sys.stderr)
      sys.exit(EXIT_USER_ERROR)
    try:
      main()
    except (EfficiencyError, OSError) as e:  # OSError: a disk full, a file removed under us, ...
      _exit_with(e, VERBOSE.value)
    except KeyboardInterrupt:
      print('interrupted: finished epochs and sweep points are saved; rerun the same command to '
            'resume.', file=sys.stderr)
      sys.exit(EXIT_INTERRUPTED)

  # A scheduler's SIGTERM (preemption) stops like Ctrl-C.
  signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
  app.run(wrapped, flags_parser=_parse_flags_or_exit)
