r"""Restores a trained workdir and reports its test accuracy, optionally with other inputs.

  python evaluate.py --workdir=runs/base
  python evaluate.py --workdir=runs/base --config.input.resolution=6 --config.input.resize=area

The workdir's own config.json is the starting point; `--config.` overrides of
the inputs (input.*, dataset.data_dir, dataset.test_split, train.eval_batch_size)
apply on top, and the result is validated before anything is read. The result is
printed and written to <workdir>/evaluations/<input label>.json.
"""

import os

from ml_collections import config_flags

from efficiency import cli
from efficiency import config as config_schema
from efficiency.errors import ConfigError

_CONFIG = cli.define_config(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs', 'base.py'),
    'Only its --config.<field> overrides are used; the rest comes from the workdir.')
# Overrides that keep the trained model as it is.
_OVERRIDABLE = ('input.', 'dataset.data_dir', 'dataset.test_split', 'train.eval_batch_size')


def _apply_overrides(config, overrides: dict) -> None:
  for path, value in overrides.items():
    if not path.startswith(_OVERRIDABLE):
      raise ConfigError(f'--config.{path}={value!r} is not allowed in evaluate.py: it would change '
                        'the trained model; only input.*, dataset.data_dir, dataset.test_split and '
                        'train.eval_batch_size may change.')
    section, _, leaf = path.rpartition('.')
    config_schema.lookup(config, section)[leaf] = value


def main() -> None:
  from efficiency import training
  from efficiency import workdir as wd
  from efficiency.report.console import format_evaluation
  workdir = cli.require_workdir()
  config = training.load_config(workdir)
  _apply_overrides(config, config_flags.get_override_values(cli.flags.FLAGS['config']))
  config_schema.validate(config)
  cli.setup_jax()
  cli.log_config(config)
  with wd.locked(workdir):
    result = training.evaluate_workdir(workdir, config)
    name = 'native' if config.input.resolution is None else f'{config.input.resolution}px'
    path = os.path.join(workdir, 'evaluations', f'{name}-{config.input.resize}'
                        f'{"-aa" if config.input.antialias else ""}.json')
    wd.write_json(path, result)
  print(format_evaluation(result))


if __name__ == '__main__':
  cli.run(main)
