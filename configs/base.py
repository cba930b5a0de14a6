r"""Base model of the default dataset: a small CNN on scikit-learn's handwritten digits (8x8).

  python train.py --config=configs/base.py --workdir=runs/base
  python evaluate.py --workdir=runs/base --config.input.resolution=6 --config.input.resize=area
  python benchmark.py --workdir=runs/base

Every other config starts from this one and overrides only what changes.
"""

from efficiency.config import defaults


def get_config():
  config = defaults()
  config.name = 'digits-cnn'
  config.dataset.name = 'digits'
  config.model = dict(name='cnn', width=32, depth=3)
  config.train.epochs = 30
  config.train.batch_size = 64
  config.train.optimizer = 'adamw'
  config.train.learning_rate = 3e-3
  config.train.checkpoint_every_epochs = 10
  return config
