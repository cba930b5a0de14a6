"""TFDS builder for scikit-learn's handwritten digits, the default dataset.

1,797 grayscale 8x8 images of the digits 0-9 (the UCI "Optical Recognition of
Handwritten Digits" test set), shipped inside scikit-learn, so it works offline.
Each source pixel counts set pixels in a 4x4 block of a 32x32 bitmap (0..16);
we store it as uint8 `round(v * 255 / 16)` so it reads like any 8-bit image.

The train/test split is fixed: stratified by class, 20% test, random_state=0
(1,437 / 360 images). It does not depend on config.seed, so every experiment
reports accuracy on the same 360 test images.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from efficiency.data.tfds_io import LocalBuilder

BUILDER_NAME = 'efficiency_digits'
TEST_FRACTION = 0.2
SPLIT_RANDOM_STATE = 0

_DESCRIPTION = (
    "scikit-learn's copy of the UCI Optical Recognition of Handwritten Digits test set: "
    '1,797 grayscale 8x8 images of the digits 0-9 written by 13 people. Each pixel is the '
    'count (0..16) of set pixels in a 4x4 block of a 32x32 bitmap, stored as uint8 '
    'round(count * 255 / 16). Fixed stratified split: 1,437 train, 360 test (random_state=0).')
_CITATION = """@misc{alpaydin1998optical,
  author = {Alpaydin, E. and Kaynak, C.},
  title = {Optical Recognition of Handwritten Digits},
  year = {1998},
  howpublished = {UCI Machine Learning Repository},
  doi = {10.24432/C50P49}
}"""
_HOMEPAGE = 'https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits'


def counts_to_uint8(counts: np.ndarray) -> np.ndarray:
  """Maps sklearn's 0..16 block counts to uint8 0..255."""
  return np.round(np.asarray(counts, np.float64) * 255.0 / 16.0).astype(np.uint8)


def split_indices() -> dict[str, np.ndarray]:
  """The fixed stratified train/test indices into `sklearn.datasets.load_digits()`."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split
  labels = load_digits().target
  train, test = train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels,
                                 random_state=SPLIT_RANDOM_STATE)
  return {'train': np.sort(train), 'test': np.sort(test)}


class EfficiencyDigits(LocalBuilder):
  """scikit-learn's handwritten digits as a TFDS dataset (8x8x1 uint8, 10 classes)."""

  name = BUILDER_NAME
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release: uint8 8x8x1 images, fixed stratified 80/20 split.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            # A Tensor feature: without TensorFlow, Image cannot encode arrays.
            'image': tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
        }),
        supervised_keys=('image', 'label'),
        homepage=_HOMEPAGE,
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager) -> dict[str, Iterator]:
    del dl_manager  # nothing to download: the data ships with scikit-learn
    return {split: self._generate_examples(indices) for split, indices in split_indices().items()}

  def _generate_examples(self, indices: np.ndarray) -> Iterator[tuple[int, dict]]:
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = counts_to_uint8(digits.images)[..., None]
    for index in indices:
      yield int(index), {'image': images[index], 'label': int(digits.target[index])}
