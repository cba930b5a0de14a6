r"""Restores a trained workdir and reports its test accuracy, optionally with other inputs.

  python evaluate.py --workdir=runs/base
  python evaluate.py --workdir=runs/base --config.input.resolution=6 --config.input.resize=area

The workdir's own config.json is the starting point; `--config.` overrides
(input resolution, resize method, ...) apply on top. The result is printed and
written to <workdir>/evaluations/<input label>.json.
"""

import os

from ml_collections import config_flags

from efficiency import cli
from efficiency import workdir as wd

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs', 'base.py'),
    'Only its --config.<field> overrides are used; the rest comes from the workdir.',
    lock_config=True)


def main() -> None:
  from efficiency import training
  from efficiency.report.console import format_evaluation
  workdir = cli.require_workdir()
  config = training.load_config(workdir)
  overrides = config_flags.get_override_values(cli.flags.FLAGS['config'])
  for path, value in _flatten(overrides):
    node = config
    *parents, leaf = path.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  cli.setup_jax()
  cli.log_config(config)
  result = training.evaluate_workdir(workdir, config)
  name = 'native' if config.input.resolution is None else f'{config.input.resolution}px'
  path = os.path.join(workdir, 'evaluations', f'{name}-{config.input.resize}'
                      f'{"-aa" if config.input.antialias else ""}.json')
  wd.write_json(path, result)
  print(format_evaluation(result))


def _flatten(tree, prefix=''):
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _flatten(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', value


if __name__ == '__main__':
  cli.run(main)
