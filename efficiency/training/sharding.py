"""Data parallelism over every local device: one mesh axis 'data', batch sharded, state replicated.

One device is the same code with a mesh of size 1. With several processes
(`jax.distributed`), each process feeds its own slice of the global batch.
"""

from __future__ import annotations

import dataclasses

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


def data_parallel(devices=None) -> DataParallel:
  """A data-parallel mesh over `devices` (default: every device of every process)."""
  devices = list(devices or jax.devices())
  # Auto axis types: the state need not be placed on the mesh by hand before jit.
  mesh = jax.make_mesh((len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices)
  return DataParallel(mesh, NamedSharding(mesh, PartitionSpec('data')),
                      NamedSharding(mesh, PartitionSpec()))
