"""Per-module cost rows for Flax NNX models.

While a model is traced, every submodule's `__call__` runs inside
`jax.named_scope(<module path>)`, so each jaxpr equation carries the path of
the innermost module that produced it. Python looks `__call__` up on the
class, so the classes that define it are patched for the duration of the
trace and restored afterwards; the wrapper finds each instance's path by id.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Iterator

import jax
from flax import nnx

from efficiency.measure import jaxpr_flops
from efficiency.measure import params as params_lib

_PATCH_LOCK = threading.Lock()


def path_name(path: tuple) -> str:
  """'stages.0.conv' for the path ('stages', 0, 'conv')."""
  return '.'.join(str(part) for part in path)


def _iter_modules(model: nnx.Module) -> Iterator[tuple[tuple, nnx.Module]]:
  if hasattr(nnx, 'iter_modules'):
    return nnx.iter_modules(model)
  return model.iter_modules()


def module_paths(model: nnx.Module) -> dict[str, str]:
  """{path name: class name} of every submodule (the root module is left out)."""
  return {path_name(path): type(module).__name__
          for path, module in _iter_modules(model) if path}


def _call_owner(cls: type) -> type | None:
  """The class in `cls`'s MRO whose own `__call__` Python will run."""
  for klass in cls.__mro__:
    if '__call__' in vars(klass):
      return klass if klass is not object else None
  return None


@contextlib.contextmanager
def module_scopes(model: nnx.Module) -> Iterator[dict[str, str]]:
  """Runs each submodule call of `model` under `jax.named_scope(path)`; yields module_paths."""
  path_of = {id(module): path_name(path) for path, module in _iter_modules(model) if path}
  active: list[int] = []
  originals: dict[type, Callable] = {}

  def scoped(original: Callable) -> Callable:
    @functools.wraps(original)
    def call(self, *args, **kwargs):
      path = path_of.get(id(self))
      if path is None or (active and active[-1] == id(self)):
        return original(self, *args, **kwargs)
      active.append(id(self))
      try:
        with jax.named_scope(path):
          return original(self, *args, **kwargs)
      finally:
        active.pop()
    return call

  with _PATCH_LOCK:
    for _, module in _iter_modules(model):
      owner = _call_owner(type(module))
      if owner is not None and owner not in originals:
        originals[owner] = vars(owner)['__call__']
        setattr(owner, '__call__', scoped(originals[owner]))
    try:
      yield module_paths(model)
    finally:
      for owner, original in originals.items():
        setattr(owner, '__call__', original)


def module_row_key(paths: dict[str, str]) -> jaxpr_flops.RowKey:
  """Row key: the innermost scope that is a module path (None outside every module)."""
  def key(scopes: tuple[str, ...]) -> str | None:
    for scope in reversed(scopes):
      if scope in paths:
        return scope
    return None
  return key


def own_param_counts(model: nnx.Module, paths: dict[str, str]) -> dict[str, int]:
  """Trainable parameters held directly by each module (not by its submodules)."""
  counts = dict.fromkeys(paths, 0)
  for path, _, array, trainable in params_lib.variable_leaves(model):
    if not trainable:
      continue
    for cut in range(len(path) - 1, 0, -1):
      owner = path_name(path[:cut])
      if owner in counts:
        counts[owner] += int(array.size)
        break
  return counts


def model_jaxpr_cost(model: nnx.Module, *inputs: Any, per_layer: bool = True) -> dict[str, Any]:
  """`jaxpr_flops.jaxpr_cost` of `model(*inputs)` with one row per module path.

  The model is traced through `nnx.split`/`nnx.merge` (its state is an input,
  not a constant). Rows carry the module `type` and its own trainable `params`.
  """
  graphdef, state = nnx.split(model)

  def forward(state, *xs):
    merged = nnx.merge(graphdef, state)
    with module_scopes(merged):
      return merged(*xs)

  paths = module_paths(model)
  record = jaxpr_flops.jaxpr_cost(forward, state, *inputs, row_key=module_row_key(paths),
                                  per_layer=per_layer)
  if record['per_layer'] is not None:
    own = own_param_counts(model, paths)
    for row in record['per_layer']:
      row['type'] = paths.get(row['name'])
      row['params'] = own.get(row['name'])
  return record
