r"""The base CNN on MNIST (28x28 grayscale, 60k/10k) through TFDS: needs internet or a prepared data_dir.

  python train.py --config=configs/mnist.py --workdir=runs/mnist
  python train.py --config=configs/mnist.py --workdir=runs/mnist --config.dataset.data_dir=/data/tfds
"""

from configs import base


def get_config():
  config = base.get_config()
  config.name = 'mnist-cnn'
  config.dataset.name = 'mnist'
  config.train.epochs = 5
  config.train.batch_size = 128
  config.train.checkpoint_every_epochs = 1
  return config
