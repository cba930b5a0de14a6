r"""Trains one model from a config file, then evaluates it on the held-out test split.

  python train.py --config=configs/base.py --workdir=runs/base
  python train.py --config=configs/base.py --workdir=runs/wide --config.model.width=64

Rerunning on the same workdir resumes from the latest checkpoint (or returns the
finished result). A config that declares a sweep is run by benchmark.py.
"""

from ml_collections import config_flags

from efficiency import cli
from efficiency.errors import ConfigError
from efficiency.report.console import format_train_result

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)


def main() -> None:
  from efficiency import training
  config = _CONFIG.value
  if config is None:
    raise ConfigError('--config is required: a config file such as configs/base.py.')
  workdir = cli.require_workdir()
  cli.setup_jax()
  cli.log_config(config)
  print(format_train_result(training.train(config, workdir)))


if __name__ == '__main__':
  cli.run(main)
