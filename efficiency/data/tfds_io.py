"""Preparing TFDS builders and reading them back into numpy, without TensorFlow.

Everything here goes through array_record files and `builder.as_data_source`,
the TFDS path that needs no TensorFlow. Failures a user can fix (TensorFlow or
another package missing, no internet for a download, data in the wrong file
format) become one-line `DataError`s.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from typing import Any, Iterator

import numpy as np
import requests
import tensorflow_datasets as tfds

from efficiency.errors import ConfigError, DataError

FILE_FORMAT = 'array_record'
_READ_CHUNK = 1024  # records per batched read


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of our builders: they prepare from local files and download nothing.

  TFDS looks for a checksums file next to a builder's source, and finding that
  source imports `importlib_resources`, which tensorflow-datasets only declares
  for Python < 3.9. Our builders have no URLs to check, so they skip the look-up.
  """

  @tfds.core.utils.classproperty
  @classmethod
  def _checksums_path(cls) -> None:
    return None


def default_data_dir() -> str:
  """$TFDS_DATA_DIR, else ~/tensorflow_datasets (the TFDS convention)."""
  return os.environ.get('TFDS_DATA_DIR') or os.path.expanduser('~/tensorflow_datasets')


@contextlib.contextmanager
def _exclusive(lock_path: str) -> Iterator[None]:
  """Serialises preparation across processes (parallel sweep runs)."""
  try:
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    handle = open(lock_path, 'a')
  except OSError as e:
    raise DataError(f'config.dataset.data_dir: cannot write {os.path.dirname(lock_path)!r} to '
                    f'prepare the dataset ({e.strerror}); set a writable data_dir.') from e
  with handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def _causes(error: BaseException) -> Iterator[BaseException]:
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def _missing_module(error: BaseException) -> str | None:
  for cause in _causes(error):
    if isinstance(cause, ModuleNotFoundError) and cause.name:
      return cause.name
  return None


def _is_network_error(error: BaseException) -> bool:
  network_types = (requests.exceptions.RequestException, socket.gaierror, ConnectionError, TimeoutError)
  return any(isinstance(cause, network_types) for cause in _causes(error))


def _prepare_instructions(name: str, data_dir: str) -> str:
  return (f'prepare it on a machine with internet and TensorFlow (`tfds build {name} --data_dir DIR '
          f'--file_format {FILE_FORMAT}`) and copy DIR to {data_dir!r}, or set config.dataset.data_dir '
          'to a directory that holds it.')


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
  # `is_prepared` alone logs a warning for every folder that is not prepared yet.
  return (builder.data_path / 'dataset_info.json').exists() and builder.is_prepared()


@contextlib.contextmanager
def _few_download_retries(retries: int = 2) -> Iterator[None]:
  """TFDS retries a failed download 10 times with backoff (~3.5 min offline before an error)."""
  from tensorflow_datasets.core.download import downloader
  # Download threads still running after the error would log each retry after our one-line error.
  logging.getLogger('urllib3.connectionpool').setLevel(logging.ERROR)
  saved = downloader.MAX_RETRIES
  downloader.MAX_RETRIES = min(saved, retries)
  try:
    yield
  finally:
    downloader.MAX_RETRIES = saved


def prepare(builder: tfds.core.DatasetBuilder, name: str, data_dir: str) -> None:
  """Runs `download_and_prepare` in array_record format unless already prepared."""
  if _is_prepared(builder):
    if not builder.info.splits:  # prepared by another process after this builder was made
      builder.info.read_from_directory(builder.data_dir)
    return
  lock_path = os.path.join(data_dir, f'.{builder.name}.prepare.lock')
  with _exclusive(lock_path):
    if _is_prepared(builder):  # another process finished while we waited: reload its splits
      builder.info.read_from_directory(builder.data_dir)
      return
    try:
      with _few_download_retries():
        builder.download_and_prepare(file_format=FILE_FORMAT)
    except Exception as e:
      module = _missing_module(e)
      if module is not None and module.split('.')[0] == 'tensorflow':
        raise DataError(f'Dataset {name!r}: preparing it needs TensorFlow, which is not installed; '
                        "run pip install 'efficiency[tensorflow]' (reading it afterwards does not).") from e
      if module is not None:
        raise DataError(f'Dataset {name!r}: preparing it needs the Python package {module!r}, which is '
                        f'not installed; run pip install {module.split(".")[0]}.') from e
      if _is_network_error(e):
        raise DataError(f'Dataset {name!r} is not in {data_dir!r} and cannot be downloaded (no network); '
                        + _prepare_instructions(name, data_dir)) from e
      raise


def data_source(builder: tfds.core.DatasetBuilder, split: str, field: str, name: str, data_dir: str):
  """`builder.as_data_source(split)` with wrong split names and formats as one-line errors."""
  available = sorted(builder.info.splits.keys())
  try:
    return builder.as_data_source(split=split)
  except NotImplementedError as e:
    stored = getattr(builder.info.file_format, 'value', builder.info.file_format)
    raise DataError(f'Dataset {name!r} in {data_dir!r} is stored as {stored}, '
                    f'not {FILE_FORMAT}; delete {str(builder.data_dir)!r} and re-prepare it, or '
                    + _prepare_instructions(name, data_dir)) from e
  except (ValueError, KeyError) as e:
    raise ConfigError(f'config.dataset.{field}={split!r} is not allowed: expected a split of {name!r} '
                      f'({", ".join(available)}), optionally sliced like "train[:80%]".') from e


def _read_records(source, indices: list[int]) -> list[dict[str, Any]]:
  # TFDS's mock_data replaces the record source with one whose batched read is
  # broken; real array_record sources have `__getitems__` on their type.
  if hasattr(type(source.data_source), '__getitems__'):
    return source.__getitems__(indices)
  return [source[i] for i in indices]


def read_all(source, image_key: str, label_key: str, name: str) -> tuple[np.ndarray, np.ndarray]:
  """Every record of a data source as (images uint8 NHWC, labels int32)."""
  count = len(source)
  if count == 0:
    raise DataError(f'Dataset {name!r}: split {getattr(source, "split", "?")!r} has no examples.')
  images, labels = None, np.empty((count,), np.int32)
  for start in range(0, count, _READ_CHUNK):
    records = _read_records(source, list(range(start, min(start + _READ_CHUNK, count))))
    for index, record in enumerate(records, start):
      image = np.asarray(record[image_key])
      image = image[..., None] if image.ndim == 2 else image
      if images is None:
        if image.dtype != np.uint8 or image.ndim != 3:
          raise DataError(f'Dataset {name!r}: feature {image_key!r} is {image.dtype} of shape {image.shape}; '
                          'expected uint8 images (H, W) or (H, W, C).')
        images = np.empty((count, *image.shape), np.uint8)
      if image.shape != images.shape[1:]:
        raise DataError(f'Dataset {name!r}: images have different shapes ({images.shape[1:]} and '
                        f'{image.shape}); only datasets of one image size are supported.')
      images[index] = image
      labels[index] = record[label_key]
  return images, labels
