"""Deterministic in-memory batching of numpy arrays, and per-process sharding.

The order of an epoch depends only on (seed, epoch), so a run resumed at
epoch k sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def num_batches(n: int, batch_size: int, drop_remainder: bool) -> int:
  """How many batches `batches` yields for `n` examples."""
  if batch_size < 1:
    raise ValueError(f'batch_size must be at least 1, got {batch_size}.')
  return n // batch_size if drop_remainder else -(-n // batch_size)


def epoch_order(n: int, *, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
  """The example order of one epoch: a permutation from rng((seed, epoch)), or 0..n-1."""
  if not shuffle:
    return np.arange(n)
  return np.random.default_rng((seed, epoch)).permutation(n)


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, *, seed: int, epoch: int,
            shuffle: bool, drop_remainder: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Yields (images, labels) batches of one epoch.

  With `drop_remainder=False` the last batch may be smaller (evaluation must
  see every example; the caller pads it to a fixed shape if it needs one).
  """
  if len(images) != len(labels):
    raise ValueError(f'images and labels differ in length: {len(images)} vs {len(labels)}.')
  count = num_batches(len(images), batch_size, drop_remainder)
  order = epoch_order(len(images), seed=seed, epoch=epoch, shuffle=shuffle)
  for index in range(count):
    if shuffle:
      take = order[index * batch_size:(index + 1) * batch_size]
      yield images[take], labels[take]
    else:  # contiguous slices: views, no copy
      yield (images[index * batch_size:(index + 1) * batch_size],
             labels[index * batch_size:(index + 1) * batch_size])


def shard_for_process(images: np.ndarray, labels: np.ndarray, process_index: int, process_count: int,
                      *, equal_sizes: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """This process's strided share: examples process_index, process_index + process_count, ...

  Shares differ in size by at most one; `equal_sizes=True` trims every share
  to `len // process_count` so all processes run the same number of steps
  (for training; evaluation should keep every example).
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} is not in [0, process_count={process_count}).')
  shard_images = images[process_index::process_count]
  shard_labels = labels[process_index::process_count]
  if equal_sizes:
    size = len(images) // process_count
    shard_images, shard_labels = shard_images[:size], shard_labels[:size]
  return shard_images, shard_labels
