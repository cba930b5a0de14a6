"""Model-ready arrays from a config: load the dataset, then scale, crop, resize and normalize."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from efficiency import data


@dataclasses.dataclass(frozen=True)
class Inputs:
  """Preprocessed float32 NHWC arrays of both splits and what the model needs to know."""
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int
  dataset: data.Dataset
  seconds: float  # loading + preprocessing wall time

  @property
  def input_shape(self) -> tuple[int, int, int]:
    return tuple(self.test_x.shape[1:])


def prepare_inputs(config, *, with_train: bool = True) -> Inputs:
  """Normalization statistics always come from the native training images, so a model
  evaluated at another resolution sees inputs standardised as in training."""
  start = time.perf_counter()
  dataset = data.load_dataset(config.dataset)
  stats = data.normalization_stats(dataset.train.images) if config.input.normalize else None
  test_x = data.preprocess(dataset.test.images, config.input, stats)
  if with_train:
    train_x = data.preprocess(dataset.train.images, config.input, stats)
    train_y = dataset.train.labels
  else:
    train_x = np.zeros((0,) + test_x.shape[1:], np.float32)
    train_y = np.zeros((0,), np.int32)
  return Inputs(train_x, train_y, test_x, dataset.test.labels, dataset.num_classes, dataset,
                time.perf_counter() - start)
