r"""A seconds-long run for tests and smoke checks: the base CNN, narrow, 2 epochs.

  python train.py --config=configs/tiny.py --workdir=/tmp/tiny
"""

from configs import base


def get_config():
  config = base.get_config()
  config.name = 'digits-tiny'
  config.model.width = 8
  config.model.depth = 2
  config.train.epochs = 2
  config.train.warmup_epochs = 0.0
  config.train.checkpoint_every_epochs = 1
  config.measure.fixed_calls = 5
  config.measure.warmup_calls = 1
  config.measure.min_calls = 1
  return config
