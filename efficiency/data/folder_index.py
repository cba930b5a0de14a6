"""Indexing a user's image folder: classes, files, the split, the shape and a fingerprint.

Layout: one subfolder per class holding PNG/JPEG images, e.g. `cats/001.png`.
If the folder has `train/` and `test/` subfolders, each holds class subfolders
and gives the split; otherwise a fixed stratified 80/20 split is drawn
(per class, seed 0, independent of config.seed). Hidden entries and files that
are not PNG/JPEG are ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
from PIL import Image

from efficiency.errors import DataError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
TEST_FRACTION = 0.2
SPLIT_SEED = 0
GRAYSCALE_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'F')
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
_INDEX_VERSION = '1'  # bump to re-prepare every folder after a change to preparation


@dataclasses.dataclass(frozen=True)
class FolderIndex:
  """What preparing a folder needs, computed from file headers only."""
  root: str
  class_names: tuple[str, ...]
  splits: dict[str, tuple[tuple[str, int], ...]]  # split -> ((relative path, label), ...)
  image_shape: tuple[int, int, int]  # (H, W, C) every image is converted to
  fingerprint: str  # changes when any file, its size or mtime, or image_size changes


def _visible(names: list[str]) -> list[str]:
  return sorted(n for n in names if not n.startswith('.'))


def _class_dirs(folder: str) -> list[str]:
  return [n for n in _visible(os.listdir(folder)) if os.path.isdir(os.path.join(folder, n))]


def _class_files(root: str, relative_dir: str) -> list[str]:
  names = _visible(os.listdir(os.path.join(root, relative_dir)))
  files = [os.path.join(relative_dir, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)
           and os.path.isfile(os.path.join(root, relative_dir, n))]
  if not files:
    raise DataError(f'Image folder class {relative_dir!r} in {root!r} has no PNG/JPEG images; '
                    'add images or remove the subfolder.')
  return files


def _stratified_split(files_by_class: dict[str, list[str]], class_names: list[str]) -> dict[str, list]:
  rng = np.random.default_rng(SPLIT_SEED)
  train, test = [], []
  for label, name in enumerate(class_names):
    files = files_by_class[name]
    order = rng.permutation(len(files))
    held_out = max(1, round(TEST_FRACTION * len(files))) if len(files) >= 2 else 0
    test += [(files[i], label) for i in order[:held_out]]
    train += [(files[i], label) for i in order[held_out:]]
  return {'train': sorted(train), 'test': sorted(test)}


def _list_files(root: str) -> tuple[list[str], dict[str, list]]:
  top = _class_dirs(root)
  if 'train' in top and 'test' in top:
    class_names = _class_dirs(os.path.join(root, 'train'))
    if not class_names:
      raise DataError(f'Image folder {os.path.join(root, "train")!r} has no class subfolders; '
                      'expected train/<class>/<image>.')
    splits = {}
    for split in ('train', 'test'):
      split_classes = _class_dirs(os.path.join(root, split))
      unknown = sorted(set(split_classes) - set(class_names))
      if unknown:
        raise DataError(f'Image folder {root!r}: test class {unknown[0]!r} has no train/ subfolder; '
                        'every test class must also be a train class.')
      splits[split] = sorted((f, class_names.index(c)) for c in split_classes
                             for f in _class_files(root, os.path.join(split, c)))
    return class_names, splits
  if not top:
    raise DataError(f'Image folder {root!r} has no class subfolders; expected <class>/<image> '
                    '(or train/<class>/<image> and test/<class>/<image>).')
  files_by_class = {name: _class_files(root, name) for name in top}
  return top, _stratified_split(files_by_class, top)


def _header(root: str, relative_path: str) -> tuple[tuple[int, int], str]:
  path = os.path.join(root, relative_path)
  try:
    with Image.open(path) as image:
      width, height = image.size
      # Only JPEG keeps EXIF in its header; other formats would decode the whole file.
      if image.format == 'JPEG' and image.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width  # decoding applies the rotation
      return (width, height), image.mode
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise DataError(f'Image folder: cannot read image {path!r} ({type(e).__name__}: {e}); '
                    'fix or remove the file.') from e


def _fingerprint(root: str, files: list[str], image_size: int | None) -> str:
  digest = hashlib.sha256(f'{_INDEX_VERSION}|{image_size}'.encode())
  for relative_path in files:
    stat = os.stat(os.path.join(root, relative_path))
    digest.update(f'|{relative_path}|{stat.st_size}|{stat.st_mtime_ns}'.encode())
  return digest.hexdigest()[:16]


def _existing_root(path: str) -> str:
  if not path or not os.path.isdir(path):
    raise DataError(f'config.dataset.path={path!r} is not an existing folder; expected a folder with '
                    'one subfolder of images per class.')
  return os.path.abspath(path)


def _all_files(splits: dict[str, list]) -> list[str]:
  return sorted(f for items in splits.values() for f, _ in items)


def folder_fingerprint(path: str, image_size: int | None) -> str:
  """The fingerprint of `index_folder(path, image_size)` from a listing and stats only (cheap)."""
  root = _existing_root(path)
  _, splits = _list_files(root)
  return _fingerprint(root, _all_files(splits), image_size)


def index_folder(path: str, image_size: int | None) -> FolderIndex:
  """Scans `path` (headers only); raises DataError naming the culprit if it cannot be used."""
  root = _existing_root(path)
  class_names, splits = _list_files(root)
  if not splits['test']:
    raise DataError(f'Image folder {root!r} has no test images: a held-out split needs a class with '
                    'at least 2 images, or a non-empty test/ subfolder.')
  files = _all_files(splits)
  headers = {f: _header(root, f) for f in files}
  channels = 1 if all(mode in GRAYSCALE_MODES for _, mode in headers.values()) else 3
  if image_size is not None:
    height = width = image_size
  else:
    sizes = sorted({size for size, _ in headers.values()})
    if len(sizes) > 1:
      raise DataError(f'Image folder {root!r} has images of {len(sizes)} different sizes (e.g. '
                      f'{sizes[0][0]}x{sizes[0][1]} and {sizes[-1][0]}x{sizes[-1][1]}); set '
                      'config.dataset.image_size to resize them to one square size.')
    width, height = sizes[0]
  return FolderIndex(
      root=root,
      class_names=tuple(class_names),
      splits={split: tuple(items) for split, items in splits.items()},
      image_shape=(height, width, channels),
      fingerprint=_fingerprint(root, files, image_size),
  )
