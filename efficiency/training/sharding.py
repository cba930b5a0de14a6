"""Data parallelism over every local device: one mesh axis 'data', batch sharded, state replicated.

One device is the same code with a mesh of size 1. With several processes
(`jax.distributed`), each process feeds its own slice of the global batch.

A program over several devices runs asynchronously even with synchronous dispatch, so a loop
that never waits runs ahead of the devices. XLA:CPU (jaxlib 0.10.2) queues at most 32 programs
per device, and the pool thread that launches one more blocks. Its pool is only as large as the
core count or the local device count, whichever is larger, so the blocked thread can leave a
collective a participant short, and the run hangs for good: seen with 2 processes x 2 devices
(Gloo) and with 4 devices in one process, on 2 cores. `StepWindow` keeps a training loop within
a few steps of its devices.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from efficiency.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DataParallel:
  mesh: jax.sharding.Mesh
  batch: NamedSharding       # leading axis split over 'data'
  replicated: NamedSharding  # whole array on every device

  @property
  def device_count(self) -> int:
    return self.mesh.devices.size

  def check_batch(self, batch_size: int, field: str) -> None:
    if batch_size % self.device_count:
      raise ConfigError(f'config.{field}={batch_size} is not allowed: the global batch must divide by '
                        f'the device count ({self.device_count}).')

  def put_state(self, state):
    return jax.device_put(state, self.replicated)

  def put_batch(self, global_batch: np.ndarray) -> jax.Array:
    """A global batch (the same on every process) -> one array sharded over all devices.

    Each process hands over only its own contiguous slice of the batch.
    """
    count, index = jax.process_count(), jax.process_index()
    if count > 1:
      per_process = global_batch.shape[0] // count
      global_batch = global_batch[index * per_process:(index + 1) * per_process]
    return jax.make_array_from_process_local_data(self.batch, global_batch)

  def put_local_batch(self, local_batch: np.ndarray) -> jax.Array:
    """This process's part of a global batch (its own examples) -> the global sharded array."""
    return jax.make_array_from_process_local_data(self.batch, local_batch)

  def fetch(self, array: jax.Array) -> np.ndarray:
    """The whole (global) array on the host, also when it spans several processes."""
    if jax.process_count() > 1:
      return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(array)


# Steps dispatched but not waited for. Each step is its program plus a few small ones (metric
# sums), so this stays far below XLA:CPU's 32 per device, and still overlaps Python with the
# devices: one device on the CPU runs each program before its call returns anyway.
STEPS_IN_FLIGHT = 2


class StepWindow:
  """At most `size` dispatched steps not yet finished: `add(outputs)` after each step waits for
  the oldest step's outputs once more than `size` are pending."""

  def __init__(self, size: int = STEPS_IN_FLIGHT):
    if size < 1:
      raise ValueError(f'size={size}: expected at least 1 step in flight.')
    self.size = size
    self._pending: collections.deque = collections.deque()

  def add(self, outputs: Any) -> None:
    self._pending.append(outputs)
    while len(self._pending) > self.size:
      jax.block_until_ready(self._pending.popleft())


def data_parallel(devices=None) -> DataParallel:
  """A data-parallel mesh over `devices` (default: every device of every process)."""
  devices = list(devices or jax.devices())
  # Auto axis types: the state need not be placed on the mesh by hand before jit.
  mesh = jax.make_mesh((len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices)
  return DataParallel(mesh, NamedSharding(mesh, PartitionSpec('data')),
                      NamedSharding(mesh, PartitionSpec()))
