"""TFDS builder for a user's folder of class subfolders, prepared without TensorFlow.

Images are decoded with Pillow (EXIF orientation applied), converted to one
channel count for the whole dataset (RGB if any image is colour, alpha dropped,
16-bit grayscale reduced to 8 bits) and, when `config.dataset.image_size` is
set, resized to that square size with Pillow's antialiased bicubic filter.
They are stored as uint8 `Tensor`s (faster to read than encoded images).

Each distinct folder content gets its own builder config, named after the
folder and a fingerprint of its files, so editing the folder re-prepares it;
old prepared copies stay in the data dir until deleted.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageOps

from efficiency.data.folder_index import FolderIndex, index_folder
from efficiency.data.tfds_io import LocalBuilder
from efficiency.errors import DataError

BUILDER_NAME = 'efficiency_image_folder'


@dataclasses.dataclass(eq=False)
class FolderConfig(tfds.core.BuilderConfig):
  """One folder's content: the config name carries its fingerprint."""
  index: FolderIndex | None = dataclasses.field(default=None, repr=False)
  image_size: int | None = None


def folder_config(path: str, image_size: int | None) -> FolderConfig:
  """Indexes the folder and names a config after it: '<folder>_<fingerprint>'."""
  index = index_folder(path, image_size)
  stem = re.sub(r'[^a-z0-9]+', '_', os.path.basename(index.root).lower()).strip('_') or 'folder'
  return FolderConfig(name=f'{stem[:40]}_{index.fingerprint}', index=index, image_size=image_size,
                      description=f'Images from {index.root}')


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
  if image.mode.startswith('I;16'):  # 16-bit grayscale: keep the high byte
    image = Image.fromarray((np.asarray(image, np.uint16) >> 8).astype(np.uint8))
  return image.convert('L' if channels == 1 else 'RGB')


def load_image(path: str, image_size: int | None, channels: int) -> np.ndarray:
  """One image as uint8 (H, W, channels); DataError naming the file if it cannot be decoded."""
  try:
    with Image.open(path) as image:
      image = _to_mode(ImageOps.exif_transpose(image), channels)
      if image_size is not None and image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
      return np.asarray(image, np.uint8).reshape(image.height, image.width, channels)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise DataError(f'Image folder: cannot decode image {path!r} ({type(e).__name__}: {e}); '
                    'fix or remove the file.') from e


class EfficiencyImageFolder(LocalBuilder):
  """A folder of class subfolders as a TFDS dataset; construct with `config=folder_config(...)`."""

  name = BUILDER_NAME
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}

  @property
  def _index(self) -> FolderIndex:
    return self.builder_config.index

  def _info(self) -> tfds.core.DatasetInfo:
    index = self._index
    height, width, channels = index.image_shape
    return tfds.core.DatasetInfo(
        builder=self,
        description=(f'Image folder {index.root}: {len(index.class_names)} classes, '
                     f'{height}x{width}x{channels} uint8 images.'),
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=index.image_shape, dtype=np.uint8),
            'label': tfds.features.ClassLabel(names=list(index.class_names)),
        }),
        supervised_keys=('image', 'label'),
        homepage=f'file://{index.root}',
    )

  def _split_generators(self, dl_manager) -> dict[str, Iterator]:
    del dl_manager  # the images are local
    return {split: self._generate_examples(items) for split, items in self._index.splits.items()}

  def _generate_examples(self, items: tuple[tuple[str, int], ...]) -> Iterator[tuple[str, dict]]:
    index = self._index
    channels = index.image_shape[2]
    for relative_path, label in items:
      image = load_image(os.path.join(index.root, relative_path), self.builder_config.image_size, channels)
      if image.shape != index.image_shape:  # the file changed since it was indexed
        raise DataError(f'Image folder: image {os.path.join(index.root, relative_path)!r} is '
                        f'{image.shape[1]}x{image.shape[0]}, expected {index.image_shape[1]}x'
                        f'{index.image_shape[0]}; set config.dataset.image_size.')
      yield relative_path, {'image': image, 'label': label}
