"""`load_dataset(config.dataset)`: a whole image classification dataset as numpy arrays.

'digits' is our scikit-learn digits builder, 'image_folder' a user's folder of
class subfolders, and any other name a TFDS dataset (mnist, fashion_mnist,
cifar10, ...) read through array_record without TensorFlow. Loaded datasets
are cached in-process (a sweep loads the same one many times); their arrays
are read-only so the cached copy cannot be changed by accident.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import tensorflow_datasets as tfds

from efficiency.data import tfds_io
from efficiency.data.digits import EfficiencyDigits
from efficiency.data.folder_index import folder_fingerprint
from efficiency.data.image_folder import EfficiencyImageFolder, folder_config
from efficiency.errors import ConfigError, DataError

OWN_DATASETS = ('digits', 'image_folder')
_CACHE_SIZE = 4


@dataclasses.dataclass(frozen=True)
class Split:
  """One split held in memory."""
  images: np.ndarray  # (N, H, W, C) uint8
  labels: np.ndarray  # (N,) int32

  def __repr__(self) -> str:
    images = f'{self.images.dtype}{list(self.images.shape)}'
    return f'Split(images={images}, labels={self.labels.dtype}[{len(self.labels)}])'


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A dataset's splits and the facts a report quotes about it."""
  name: str
  train: Split
  test: Split
  num_classes: int
  class_names: tuple[str, ...]
  description: str
  citation: str
  homepage: str
  image_shape: tuple[int, int, int]  # native (H, W, C)


def _tfds_builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError as e:
    raise ConfigError(f'config.dataset.name={name!r} is not allowed: expected one of '
                      f'{", ".join(map(repr, OWN_DATASETS))} or a TFDS dataset name '
                      '(see tensorflow_datasets.list_builders()).') from e


def _feature(features: tfds.features.FeaturesDict, key: str):
  return features[key] if key in features.keys() else None


def _feature_keys(builder: tfds.core.DatasetBuilder, name: str) -> tuple[str, str]:
  features = builder.info.features
  supervised = builder.info.supervised_keys
  if (isinstance(supervised, tuple) and len(supervised) == 2 and all(isinstance(k, str) for k in supervised)
      and isinstance(_feature(features, supervised[0]), (tfds.features.Image, tfds.features.Tensor))):
    image_key, label_key = supervised
  else:
    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    image_key, label_key = (images[0] if images else 'image'), 'label'
  label_feature = _feature(features, label_key)
  if _feature(features, image_key) is None or not isinstance(label_feature, tfds.features.ClassLabel):
    raise DataError(f'Dataset {name!r} is not an image classification dataset: expected an image '
                    f'feature and a ClassLabel {label_key!r}; it has {", ".join(features.keys())}.')
  return image_key, label_key


def _frozen_split(images: np.ndarray, labels: np.ndarray) -> Split:
  images.setflags(write=False)
  labels.setflags(write=False)
  return Split(images=images, labels=labels)


def _read_builder(builder: tfds.core.DatasetBuilder, name: str, data_dir: str,
                  train_split: str, test_split: str) -> Dataset:
  tfds_io.prepare(builder, name, data_dir)
  image_key, label_key = _feature_keys(builder, name)
  splits = {}
  for field, split in (('train_split', train_split), ('test_split', test_split)):
    source = tfds_io.data_source(builder, split, field, name, data_dir)
    splits[field] = _frozen_split(*tfds_io.read_all(source, image_key, label_key, name))
  train, test = splits['train_split'], splits['test_split']
  if train.images.shape[1:] != test.images.shape[1:]:
    raise DataError(f'Dataset {name!r}: train images are {train.images.shape[1:]} but test images are '
                    f'{test.images.shape[1:]}; both splits must share one image shape.')
  label_feature = builder.info.features[label_key]
  info = builder.info
  return Dataset(
      name=name,
      train=train,
      test=test,
      num_classes=int(label_feature.num_classes),
      class_names=tuple(label_feature.names),
      description=(info.description or '').strip(),
      citation=(info.citation or '').strip(),
      homepage=info.homepage or '',
      image_shape=tuple(int(d) for d in train.images.shape[1:]),
  )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load(name: str, data_dir: str, path: str | None, image_size: int | None,
          train_split: str, test_split: str, content_key: str | None) -> Dataset:
  del content_key  # only part of the cache key: a changed folder is a cache miss
  if name == 'digits':
    builder = EfficiencyDigits(data_dir=data_dir, file_format=tfds_io.FILE_FORMAT)
  elif name == 'image_folder':
    builder = EfficiencyImageFolder(data_dir=data_dir, config=folder_config(path, image_size),
                                    file_format=tfds_io.FILE_FORMAT)
  else:
    builder = _tfds_builder(name, data_dir)
  return _read_builder(builder, name, data_dir, train_split, test_split)


def load_dataset(dataset_cfg) -> Dataset:
  """Loads (preparing on first use) the dataset described by `config.dataset`."""
  name = dataset_cfg.name
  if not isinstance(name, str) or not name.strip():
    raise ConfigError(f'config.dataset.name={name!r} is not allowed: expected one of '
                      f'{", ".join(map(repr, OWN_DATASETS))} or a TFDS dataset name.')
  data_dir = os.path.abspath(os.path.expanduser(dataset_cfg.data_dir or tfds_io.default_data_dir()))
  path, image_size, content_key = None, None, None
  if name == 'image_folder':
    if not dataset_cfg.path:
      raise ConfigError('config.dataset.path=None is not allowed: dataset "image_folder" needs the '
                        'folder of class subfolders.')
    path, image_size = os.path.abspath(os.path.expanduser(dataset_cfg.path)), dataset_cfg.image_size
    content_key = folder_fingerprint(path, image_size)
  return _load(name, data_dir, path, image_size, dataset_cfg.train_split, dataset_cfg.test_split,
               content_key)


def clear_cache() -> None:
  """Forgets every dataset loaded in this process."""
  _load.cache_clear()
