r"""Trains one model from a config file, then evaluates it on the held-out test split.

  python train.py --config=configs/base.py --workdir=runs/base
  python train.py --config=configs/base.py --workdir=runs/wide --config.model.width=64

The config is validated before anything else happens. Rerunning on the same
workdir resumes from the latest checkpoint (or returns the finished result). A
config that declares a sweep is run by benchmark.py.
"""

from efficiency import cli
from efficiency import workdir as wd
from efficiency.report.console import format_train_result

_CONFIG = cli.define_config(None, 'Experiment config file.')


def main() -> None:
  config = cli.require_config(_CONFIG)
  workdir = wd.ensure_writable(cli.require_workdir())
  from efficiency import training
  cli.setup_jax()
  cli.log_config(config)
  print(format_train_result(training.train(config, workdir)))


if __name__ == '__main__':
  cli.run(main)
