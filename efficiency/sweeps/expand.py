"""The sweep declared in a config: its validation and its expansion into points.

`config.sweep` is a list of groups (an empty list sweeps the base model alone):

  dict(study='resolution', method='area', protocol='evaluate',
       product={'input.resolution': [7, 6, 5, 4]},
       zip={'model.width': [16, 24], 'model.depth': [2, 3]},
       fixed={'input.resize': 'area', 'measure.per_layer': False})

* `product`: the cartesian product of the listed values (first field varies slowest).
* `zip`: parallel lists of equal length, taken together as one axis.
* Both given: the zipped axis is crossed with the product (every product point
  at every zipped position).
* `fixed`: set at every point of the group.
* `protocol`: 'train' (train at this config, the default), 'evaluate' (the
  trained base model evaluated on other inputs: only `input.*` and `measure.*`
  may change) or 'distill' (train with the base model as teacher:
  `train.teacher_workdir` is set to the base point's workdir).
* Optional: `title` and `description` of the study, `method_description` (one
  line on why the method was chosen) for the report.

Every group expands into points; the first point of every sweep is the base
point (the config without overrides, protocol 'train', study 'base'). A point
is identified by `point_id`, a hash of its resolved config and protocol, so a
point declared by two studies is computed once and listed in both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from typing import Any

import ml_collections

from efficiency import config as config_schema
from efficiency.errors import ConfigError

PROTOCOLS = ('train', 'evaluate', 'distill')
GROUP_KEYS = ('study', 'method', 'protocol', 'product', 'zip', 'fixed', 'title', 'description',
              'method_description')
BASE_STUDY = 'base'
# Fields the runner sets itself, or that would nest a sweep.
RESERVED_FIELDS = ('sweep', 'train.teacher_workdir')
EVALUATE_PREFIXES = ('input.', 'measure.')


@dataclasses.dataclass(frozen=True)
class Point:
  """One point to compute: its resolved config (sweep=None) and where it appears in the table.

  `overrides` are the declared dotted overrides (a distill point's teacher is
  set in `config` only). `memberships` lists every (study, method) that declared
  this point; `study` and `method` are the first of them.
  """
  point_id: str
  config: ml_collections.ConfigDict
  overrides: dict[str, Any]
  protocol: str
  memberships: tuple[tuple[str, str], ...]

  @property
  def study(self) -> str:
    return self.memberships[0][0]

  @property
  def method(self) -> str:
    return self.memberships[0][1]

  @property
  def is_base(self) -> bool:
    return not self.overrides and self.protocol == 'train'

  def label(self) -> str:
    changes = ', '.join(f'{k}={v}' for k, v in self.overrides.items()
                        if not k.startswith('measure.')) or 'base config'
    return f'{self.study}/{self.method} [{self.protocol}] {changes}'


def point_dir(workdir: str, point_id: str) -> str:
  return os.path.join(workdir, 'points', point_id)


def point_id_of(config_dict: dict, protocol: str) -> str:
  """12 hex digits of the SHA-256 of the resolved config (as canonical JSON) and the protocol."""
  text = json.dumps(dict(config=config_dict, protocol=protocol), sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def _where(index: int, group: Any) -> str:
  if isinstance(group, dict) and isinstance(group.get('study'), str):
    return f'config.sweep[{index}] (study {group["study"]!r})'
  return f'config.sweep[{index}]'


def _check_group(config, index: int, group: Any) -> None:
  where = _where(index, group)
  if not isinstance(group, dict):
    raise ConfigError(f'{where}={group!r} is not allowed: expected a dict with keys study, method, '
                      'protocol, product, zip, fixed.')
  for key in group:
    if key not in GROUP_KEYS:
      raise ConfigError(f'{where}.{key} is not a known key: expected one of '
                        f'{", ".join(GROUP_KEYS)}.')
  for key in ('study', 'method'):
    if not isinstance(group.get(key), str) or not group[key].strip():
      raise ConfigError(f'{where}.{key}={group.get(key)!r} is not allowed: expected a non-empty '
                        'string.')
  if group['study'] == BASE_STUDY:
    raise ConfigError(f'{where}.study={BASE_STUDY!r} is not allowed: the base point is added to '
                      'every sweep by itself; name the study after what it varies.')
  protocol = group.get('protocol', 'train')
  if protocol not in PROTOCOLS:
    raise ConfigError(f'{where}.protocol={protocol!r} is not allowed: expected one of '
                      f'{", ".join(PROTOCOLS)}.')
  for key in ('product', 'zip', 'fixed'):
    section = group.get(key, {})
    if not isinstance(section, dict):
      raise ConfigError(f'{where}.{key}={section!r} is not allowed: expected a dict of '
                        '{dotted field: value(s)}.')
    for path, values in section.items():
      _check_field(config, where, key, path, protocol)
      if key != 'fixed' and (not isinstance(values, (list, tuple)) or not values):
        raise ConfigError(f'{where}.{key}[{path!r}]={values!r} is not allowed: expected a '
                          'non-empty list of values.')
  lengths = {path: len(values) for path, values in group.get('zip', {}).items()}
  if len(set(lengths.values())) > 1:
    raise ConfigError(f'{where}.zip lists have unequal lengths ('
                      + ', '.join(f'{p}: {n}' for p, n in lengths.items())
                      + '): expected lists of equal length.')
  product, zipped, fixed = (set(group.get(key, {})) for key in ('product', 'zip', 'fixed'))
  overlap = (product & zipped) | ((product | zipped) & fixed)
  if overlap:
    raise ConfigError(f'{where} sets {", ".join(sorted(overlap))} in more than one of product, zip '
                      'and fixed: expected each field once.')


def _check_field(config, where: str, key: str, path: Any, protocol: str) -> None:
  if not isinstance(path, str) or not path:
    raise ConfigError(f'{where}.{key} field {path!r} is not allowed: expected a dotted config '
                      'field such as "model.width".')
  if path in RESERVED_FIELDS or path.split('.')[0] == 'sweep':
    raise ConfigError(f'{where}.{key}[{path!r}] is not allowed: the sweep runner sets it.')
  # Model families take their own keyword arguments, which the base config may not list.
  model_kwarg = path.startswith('model.') and path.count('.') == 1
  if not config_schema.is_field(config, path, leaf=True) and not model_kwarg:
    raise ConfigError(f'{where}.{key}[{path!r}] is not a config field: see efficiency/config.py '
                      'SCHEMA (or a keyword argument of the model family, model.<name>).')
  if protocol == 'evaluate' and not path.startswith(EVALUATE_PREFIXES):
    raise ConfigError(f'{where}.{key}[{path!r}] is not allowed with protocol "evaluate": it '
                      'evaluates the trained base model, so only input.* and measure.* may change.')


def _group_overrides(group: dict) -> list[dict[str, Any]]:
  """The overrides of every point of a group, in declaration order."""
  product = group.get('product', {})
  zipped = group.get('zip', {})
  fixed = group.get('fixed', {})
  product_points = [dict(zip(product, values)) for values in itertools.product(*product.values())]
  zip_points = [dict(zip(zipped, values)) for values in zip(*zipped.values())] or [{}]
  return [{**p, **z, **fixed} for p in product_points for z in zip_points]


def base_config(config) -> ml_collections.ConfigDict:
  """The config of the base point: the sweep config with `sweep=None`."""
  resolved = ml_collections.ConfigDict(_plain(config))
  resolved.sweep = None
  return resolved


def _plain(config) -> dict:
  return json.loads(json.dumps(config.to_dict() if hasattr(config, 'to_dict') else dict(config)))


def _apply(base: ml_collections.ConfigDict, overrides: dict[str, Any], where: str
           ) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(base.to_dict())
  for path, value in overrides.items():
    node = config
    *parents, leaf = path.split('.')
    for part in parents:
      node = node[part]
    try:
      node[leaf] = value
    except (TypeError, ValueError):
      kind = type(node[leaf]).__name__
      raise ConfigError(f'{where}: config.{path}={value!r} is not allowed: expected a {kind} like '
                        f'the config\'s {node[leaf]!r}.') from None
  return config


def _hashable_dict(config: ml_collections.ConfigDict, base_id: str | None) -> dict:
  """The config dict a point is identified by: the teacher is named by the base point's id, not
  by an absolute path, so a moved sweep workdir keeps its point ids."""
  plain = _plain(config)
  if base_id is not None:
    plain['train']['teacher_workdir'] = f'points/{base_id}'
  return plain


def expand(config, workdir: str | None = None) -> list[Point]:
  """Every point of the sweep, base point first, each point_id once.

  With `workdir`, distill points get `train.teacher_workdir` = the base point's
  absolute workdir; without it, the relative path `points/<base id>`.
  """
  sweep = config.sweep
  if sweep is None:
    sweep = []
  if not isinstance(sweep, (list, tuple)):
    raise ConfigError(f'config.sweep={sweep!r} is not allowed: expected a list of groups (dicts) '
                      'or None.')
  for index, group in enumerate(sweep):
    _check_group(config, index, group)
  base = base_config(config)
  base_id = point_id_of(_hashable_dict(base, None), 'train')
  teacher = (os.path.abspath(point_dir(workdir, base_id)) if workdir is not None
             else f'points/{base_id}')
  points: dict[str, dict] = {base_id: dict(config=base, overrides={}, protocol='train',
                                           memberships=[(BASE_STUDY, BASE_STUDY)])}
  for index, group in enumerate(sweep):
    protocol = group.get('protocol', 'train')
    for overrides in _group_overrides(group):
      where = f'{_where(index, group)} point {json.dumps(overrides, default=str)}'
      applied = dict(overrides)
      if protocol == 'distill':
        applied['train.teacher_workdir'] = teacher
      point_config = _apply(base, applied, where)
      try:
        config_schema.validate(point_config)
      except ConfigError as e:
        raise ConfigError(f'{where}: {e}') from None
      pid = point_id_of(_hashable_dict(point_config, base_id if protocol == 'distill' else None),
                        protocol)
      membership = (group['study'], group['method'])
      if pid in points:
        if membership not in points[pid]['memberships']:
          points[pid]['memberships'].append(membership)
        continue
      points[pid] = dict(config=point_config, overrides=overrides, protocol=protocol,
                         memberships=[membership])
  return [Point(pid, p['config'], p['overrides'], p['protocol'], tuple(p['memberships']))
          for pid, p in points.items()]


def validate_sweep(config) -> None:
  """Raises ConfigError (one line naming the group index and the field) unless the sweep expands
  into points that all pass `efficiency.config.validate`."""
  expand(config)


def study_descriptions(config) -> dict[str, dict[str, str]]:
  """{study: {title, description}} from the groups, falling back to the built-in studies."""
  from efficiency.sweeps.methods import STUDIES
  studies = {BASE_STUDY: dict(STUDIES[BASE_STUDY])}
  for group in config.sweep or []:
    known = STUDIES.get(group['study'], dict(title=group['study'], description=''))
    entry = studies.setdefault(group['study'], dict(known))
    for key in ('title', 'description'):
      if group.get(key):
        entry[key] = group[key]
  return studies
