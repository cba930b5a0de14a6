"""Model families by name: lookup, user registration, config checks and construction.

A family is an `nnx.Module` class whose constructor is
`__init__(self, *, in_channels, num_classes, width, depth, <family kwargs>, rngs)`.
`model_cfg` (the config's `model` section) is `dict(name=..., width=..., depth=...,
**family kwargs)`. A family may declare `WIDTH_RANGE` / `DEPTH_RANGE` (inclusive
(lo, hi)), `KWARG_RANGES` ({kwarg: (lo, hi)}) and `INFO` (see `family_info`).

Users add their own family with the `register` decorator:

  @registry.register('tiny')
  class Tiny(nnx.Module):
    def __init__(self, *, in_channels, num_classes, width, depth, rngs): ...
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from flax import nnx

from efficiency.errors import ConfigError
from efficiency.models.cnn import CNN
from efficiency.models.mlp import MLP
from efficiency.models.mobilenet import MobileNet
from efficiency.models.resnet import ResNet

MODEL_FAMILIES: dict[str, type] = {'cnn': CNN, 'resnet': ResNet, 'mobilenet': MobileNet, 'mlp': MLP}

# Constructor arguments every family takes; the first three come from the dataset
# and the caller, never from model_cfg.
SET_BY_CALLER = ('in_channels', 'num_classes', 'rngs')
REQUIRED_ARGUMENTS = SET_BY_CALLER + ('width', 'depth')
DEFAULT_WIDTH_RANGE = (1, 4096)
DEFAULT_DEPTH_RANGE = (1, 256)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
  return dict(inspect.signature(cls.__init__).parameters)


def register(name: str) -> Callable[[type], type]:
  """Class decorator adding a model family under `name` (usable as config.model.name)."""
  if not isinstance(name, str) or not name.strip():
    raise ConfigError(f'model family name {name!r} is not allowed: expected a non-empty string.')

  def decorator(cls: type) -> type:
    missing = [arg for arg in REQUIRED_ARGUMENTS if arg not in _parameters(cls)]
    if missing:
      raise ConfigError(f'model family {name!r} ({cls.__qualname__}) cannot be registered: its '
                        f'__init__ lacks the keyword arguments {", ".join(missing)}.')
    existing = MODEL_FAMILIES.get(name)
    # Re-running a module that registers a family (a notebook cell, a reload) is allowed.
    if existing is not None and (existing.__module__, existing.__qualname__) != (
        cls.__module__, cls.__qualname__):
      raise ConfigError(f'model family {name!r} is already registered to '
                        f'{existing.__module__}.{existing.__qualname__}; choose another name.')
    MODEL_FAMILIES[name] = cls
    return cls
  return decorator


def family_kwargs(name: str) -> dict[str, Any]:
  """The family's own keyword arguments and their defaults (inspect.Parameter.empty if none)."""
  cls = _family(name)
  return {arg: p.default for arg, p in _parameters(cls).items()
          if arg != 'self' and arg not in REQUIRED_ARGUMENTS
          and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}


def family_info(name: str) -> dict[str, str | None]:
  """title, paper, citation and description of a family, for reports."""
  cls = _family(name)
  doc = (inspect.getdoc(cls) or '').strip()
  info = dict(title=cls.__name__, paper=None, citation=None,
              description=doc.splitlines()[0] if doc else None)
  info.update(getattr(cls, 'INFO', {}))
  return {key: info[key] for key in ('title', 'paper', 'citation', 'description')}


def _family(name: Any) -> type:
  if not isinstance(name, str) or name not in MODEL_FAMILIES:
    raise ConfigError(f'config.model.name={name!r} is not allowed: expected one of '
                      f'{", ".join(sorted(MODEL_FAMILIES))}.')
  return MODEL_FAMILIES[name]


def _as_dict(model_cfg: Any) -> dict[str, Any]:
  if not hasattr(model_cfg, 'keys'):
    raise ConfigError(f'config.model={model_cfg!r} is not allowed: expected a mapping with name, '
                      'width, depth and family keyword arguments.')
  return {key: model_cfg[key] for key in model_cfg.keys()}


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _check_range(field: str, value: Any, bounds: tuple[int, int], family: str) -> None:
  lo, hi = bounds
  if not (_is_int(value) or isinstance(value, float)) or not lo <= value <= hi:
    raise ConfigError(f'config.model.{field}={value!r} is not allowed: expected a number in '
                      f'[{lo}, {hi}] for model family {family!r}.')


def _check_type(field: str, value: Any, default: Any, family: str) -> None:
  if default is inspect.Parameter.empty or default is None:
    return
  if isinstance(default, bool):
    ok, allowed = isinstance(value, bool), 'True or False'
  elif isinstance(default, int):
    ok, allowed = _is_int(value), 'an integer'
  elif isinstance(default, float):
    ok, allowed = (_is_int(value) or isinstance(value, float)), 'a number'
  elif isinstance(default, str):
    ok, allowed = isinstance(value, str), 'a string'
  else:
    return
  if not ok:
    raise ConfigError(f'config.model.{field}={value!r} is not allowed: expected {allowed} '
                      f'for model family {family!r}.')


def check_model_config(model_cfg: Mapping[str, Any]) -> None:
  """Raises ConfigError (one line naming the field) unless `model_cfg` builds a known family."""
  cfg = _as_dict(model_cfg)
  if 'name' not in cfg:
    raise ConfigError('config.model.name is missing: expected one of '
                      f'{", ".join(sorted(MODEL_FAMILIES))}.')
  name = cfg['name']
  cls = _family(name)
  for field, bounds in (('width', getattr(cls, 'WIDTH_RANGE', DEFAULT_WIDTH_RANGE)),
                        ('depth', getattr(cls, 'DEPTH_RANGE', DEFAULT_DEPTH_RANGE))):
    lo, hi = bounds
    if field not in cfg:
      raise ConfigError(f'config.model.{field} is missing: expected an integer in [{lo}, {hi}] '
                        f'for model family {name!r}.')
    if not _is_int(cfg[field]) or not lo <= cfg[field] <= hi:
      raise ConfigError(f'config.model.{field}={cfg[field]!r} is not allowed: expected an integer '
                        f'in [{lo}, {hi}] for model family {name!r}.')
  accepted = family_kwargs(name)
  takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in _parameters(cls).values())
  kwarg_ranges = getattr(cls, 'KWARG_RANGES', {})
  for field, value in cfg.items():
    if field in ('name', 'width', 'depth'):
      continue
    if field in SET_BY_CALLER:
      raise ConfigError(f'config.model.{field} is not allowed: it is set from the dataset and the '
                        'seed, not the model config.')
    if field not in accepted:
      if takes_any:
        continue
      allowed = ', '.join(sorted(accepted)) or 'none besides width and depth'
      raise ConfigError(f'config.model.{field} is not an argument of model family {name!r}: '
                        f'expected one of name, width, depth, or its own arguments ({allowed}).')
    _check_type(field, value, accepted[field], name)
    if field in kwarg_ranges:
      _check_range(field, value, kwarg_ranges[field], name)
  for field, default in accepted.items():
    if default is inspect.Parameter.empty and field not in cfg:
      raise ConfigError(f'config.model.{field} is missing: model family {name!r} requires it.')


def create_model(model_cfg: Mapping[str, Any], *, num_classes: int, in_channels: int,
                 rngs: nnx.Rngs) -> nnx.Module:
  """Checks `model_cfg` and builds its family; the same `nnx.Rngs(seed)` gives the same params."""
  check_model_config(model_cfg)
  cfg = _as_dict(model_cfg)
  cls = MODEL_FAMILIES[cfg.pop('name')]
  return cls(in_channels=in_channels, num_classes=num_classes, rngs=rngs, **cfg)
