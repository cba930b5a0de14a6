"""Parameter counts: trainable (`nnx.Param`) and all other state, with bytes by dtype.

Works on an `nnx.Module`, an `nnx.State`, or any pytree of arrays (leaves that
are not `nnx.Variable`s are counted as trainable parameters).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from flax import nnx


def _leaf_size_and_bytes(array: Any) -> tuple[int, int, str]:
  """(elements, bytes, dtype name) of one array, PRNG key arrays included."""
  dtype = array.dtype
  size = int(math.prod(np.shape(array)))
  if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
    data = jax.random.key_data(array)
    return size, int(data.size) * int(data.dtype.itemsize), str(dtype)
  return size, size * int(np.dtype(dtype).itemsize), str(dtype)


def variable_leaves(model_or_state: Any) -> list[tuple[tuple, str, Any, bool]]:
  """(path, variable type name, array, trainable) per leaf; plain arrays are trainable 'Param's."""
  tree = nnx.state(model_or_state) if isinstance(model_or_state, nnx.Module) else model_or_state
  leaves = jax.tree_util.tree_flatten_with_path(
      tree, is_leaf=lambda x: isinstance(x, nnx.Variable))[0]
  out = []
  for key_path, leaf in leaves:
    path = tuple(getattr(k, 'key', getattr(k, 'idx', getattr(k, 'name', k))) for k in key_path)
    if isinstance(leaf, nnx.Variable):
      out.append((path, type(leaf).__name__, leaf[...], isinstance(leaf, nnx.Param)))
    elif hasattr(leaf, 'dtype') and hasattr(leaf, 'shape'):
      out.append((path, 'Param', leaf, True))
  return out


def count_params(model_or_state: Any) -> dict[str, Any]:
  """Counts of trainable parameters and of all other state.

  Returns trainable, trainable_bytes, trainable_bytes_by_dtype, non_trainable,
  non_trainable_bytes, non_trainable_bytes_by_dtype, non_trainable_by_type (e.g.
  BatchStat, RngKey), total and total_bytes. Trainable = `nnx.Param` and its
  subclasses; everything else (BatchNorm statistics, RNG state, caches) is
  non-trainable.
  """
  counts = {'trainable': [0, 0, {}], 'non_trainable': [0, 0, {}]}
  by_type: dict[str, int] = {}
  for _, type_name, array, trainable in variable_leaves(model_or_state):
    size, nbytes, dtype = _leaf_size_and_bytes(array)
    group = counts['trainable' if trainable else 'non_trainable']
    group[0] += size
    group[1] += nbytes
    group[2][dtype] = group[2].get(dtype, 0) + nbytes
    if not trainable:
      by_type[type_name] = by_type.get(type_name, 0) + size
  record: dict[str, Any] = {}
  for name, (size, nbytes, by_dtype) in counts.items():
    record[name] = size
    record[f'{name}_bytes'] = nbytes
    record[f'{name}_bytes_by_dtype'] = dict(sorted(by_dtype.items()))
  record['non_trainable_by_type'] = dict(sorted(by_type.items()))
  record['total'] = record['trainable'] + record['non_trainable']
  record['total_bytes'] = record['trainable_bytes'] + record['non_trainable_bytes']
  return record
