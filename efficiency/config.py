"""The one typed schema of an experiment config, its defaults and its validation.

Every config file in `configs/` starts from `defaults()` and overrides fields.
`validate(config)` checks every field against `SCHEMA` and raises `ConfigError`
with one line naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import ml_collections
from ml_collections.config_dict import placeholder

from efficiency.errors import ConfigError

OPTIMIZERS = ('adamw', 'sgd')
SCHEDULES = ('cosine', 'constant')


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field: its type(s), a range check and the words for what is allowed."""
  types: tuple[type, ...]
  allowed: str
  check: Callable[[Any], bool] | None = None
  optional: bool = False  # None is allowed
  doc: str = ''


def _int(lo: int, hi: int, doc: str = '', optional: bool = False) -> Field:
  return Field((int,), f'an integer in [{lo}, {hi}]' + (' or None' if optional else ''),
               lambda v: lo <= v <= hi, optional, doc)


def _float(lo: float, hi: float, doc: str = '', lo_open: bool = False, hi_open: bool = False) -> Field:
  lb, rb = '(' if lo_open else '[', ')' if hi_open else ']'

  def check(v):
    if not math.isfinite(v):
      return False
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
  return Field((int, float), f'a number in {lb}{lo}, {hi}{rb}', check, False, doc)


def _choice(options: tuple[str, ...], doc: str = '') -> Field:
  return Field((str,), 'one of ' + ', '.join(options), lambda v: v in options, False, doc)


def _bool(doc: str = '') -> Field:
  return Field((bool,), 'True or False', None, False, doc)


def _str(doc: str = '', optional: bool = False) -> Field:
  return Field((str,), 'a non-empty string' + (' or None' if optional else ''),
               lambda v: bool(v.strip()), optional, doc)


# Names checked against registries that live in other packages (resize methods,
# model families, datasets) are listed here as plain strings and checked in
# `validate` by importing the registry lazily, so this module imports nothing heavy.
SCHEMA: dict[str, Field] = {
    'name': _str('experiment name, used in reports'),
    'seed': _int(0, 2**31 - 1, 'seeds parameter init, shuffling and the data split'),
    'dataset.name': _str('"digits", "image_folder", or any TFDS image classification dataset'),
    'dataset.data_dir': _str('TFDS data directory; None = $TFDS_DATA_DIR or ~/tensorflow_datasets', optional=True),
    'dataset.path': _str('image_folder only: folder with one subfolder per class', optional=True),
    'dataset.image_size': _int(1, 4096, 'image_folder only: resize every image to this square size', optional=True),
    'dataset.train_split': _str('TFDS split used for training'),
    'dataset.test_split': _str('TFDS split used for the reported accuracy'),
    'input.resolution': _int(1, 4096, 'square input size fed to the model; None = native', optional=True),
    'input.resize': _str('downsampling method, see efficiency.data.transforms.RESIZE_METHODS'),
    'input.antialias': _bool('low-pass filter before downsampling (bilinear, bicubic, lanczos)'),
    'input.center_crop': _float(0.0, 1.0, 'fraction of the shorter side kept by a center crop', lo_open=True),
    'input.normalize': _bool('per-channel standardisation with training-set mean and std'),
    'model.name': _str('model family, see efficiency.models.registry'),
    'model.width': _int(1, 4096, 'channels of the first stage (CNN, ResNet, MobileNet) or hidden units (MLP)'),
    'model.depth': _int(1, 256, 'layers (CNN, MLP), blocks per stage (ResNet, MobileNet)'),
    'train.epochs': _int(1, 100_000),
    'train.batch_size': _int(1, 65_536),
    'train.eval_batch_size': _int(1, 65_536),
    'train.optimizer': _choice(OPTIMIZERS),
    'train.learning_rate': _float(0.0, 10.0, 'peak learning rate', lo_open=True),
    'train.weight_decay': _float(0.0, 10.0, 'decoupled (AdamW) or L2 added to the gradient (SGD)'),
    'train.momentum': _float(0.0, 1.0, 'SGD momentum', hi_open=True),
    'train.nesterov': _bool(),
    'train.schedule': _choice(SCHEDULES),
    'train.warmup_epochs': _float(0.0, 100_000.0, 'linear warm-up before the schedule'),
    'train.label_smoothing': _float(0.0, 1.0, hi_open=True),
    'train.checkpoint_every_epochs': _int(1, 100_000),
    'train.keep_checkpoints': _int(1, 1000),
    'train.teacher_workdir': _str('knowledge distillation: workdir of a trained teacher', optional=True),
    'train.distill_alpha': _float(0.0, 1.0, 'weight of the distillation loss'),
    'train.distill_temperature': _float(0.0, 100.0, 'softmax temperature of distillation', lo_open=True),
    'measure.batch_size': _int(1, 65_536, 'batch used for throughput'),
    'measure.warmup_calls': _int(0, 100_000),
    'measure.min_calls': _int(1, 10_000_000),
    'measure.max_calls': _int(1, 10_000_000),
    'measure.fixed_calls': _int(0, 10_000_000, '0 = adaptive; N = exactly N timed calls'),
    'measure.min_time_s': _float(0.0, 3600.0),
    'measure.max_time_s': _float(0.0, 3600.0, lo_open=True),
    'measure.rel_precision': _float(0.0, 1.0, 'stop when the 95% CI of the median is this fraction of it',
                                    lo_open=True),
    'measure.per_layer': _bool('per-layer FLOPs table'),
}
# Fields not in SCHEMA that a config may hold: model family keyword arguments
# (checked against the family's signature) and the sweep declaration
# (checked by efficiency.sweeps).
FREE_SECTIONS = ('model', 'sweep')


def defaults() -> ml_collections.ConfigDict:
  """A complete config with every field of SCHEMA at its default."""
  c = ml_collections.ConfigDict()
  c.name = 'experiment'
  c.seed = 0
  # Optional fields are typed placeholders so `--config.input.resolution=6` parses.
  c.dataset = dict(name='digits', data_dir=placeholder(str), path=placeholder(str),
                   image_size=placeholder(int), train_split='train', test_split='test')
  c.input = dict(resolution=placeholder(int), resize='area', antialias=True, center_crop=1.0, normalize=True)
  c.model = dict(name='cnn', width=32, depth=3)
  c.train = dict(epochs=30, batch_size=64, eval_batch_size=512, optimizer='adamw',
                 learning_rate=3e-3, weight_decay=1e-4, momentum=0.9, nesterov=True,
                 schedule='cosine', warmup_epochs=1.0, label_smoothing=0.0,
                 checkpoint_every_epochs=5, keep_checkpoints=2,
                 teacher_workdir=placeholder(str), distill_alpha=0.5, distill_temperature=4.0)
  c.measure = dict(batch_size=64, warmup_calls=10, min_calls=30, max_calls=2000, fixed_calls=0,
                   min_time_s=0.2, max_time_s=2.0, rel_precision=0.02, per_layer=True)
  c.sweep = None
  return c


def lookup(config, path: str):
  """The value (or section) at dotted `path`; KeyError if there is none."""
  node = config
  for part in path.split('.'):
    if not hasattr(node, 'keys') or part not in node:
      raise KeyError(path)
    node = node[part]
  return node


def is_field(config, path: str, *, leaf: bool = False) -> bool:
  """Whether dotted `path` exists in `config` (with `leaf`: and is a value, not a section)."""
  try:
    node = lookup(config, path)
  except KeyError:
    return False
  return not (leaf and hasattr(node, 'keys'))


def iter_fields(config, prefix: str = ''):
  """(dotted path, value) of every leaf field of `config`."""
  for key in config.keys():
    value = config[key]
    path = f'{prefix}{key}'
    if hasattr(value, 'keys'):
      yield from iter_fields(value, path + '.')
    else:
      yield path, value


def check_field(path: str, value: Any) -> None:
  """Raises ConfigError unless `value` is allowed for the schema field `path`."""
  field = SCHEMA[path]
  if value is None:
    if field.optional:
      return
    raise ConfigError(f'config.{path}=None is not allowed: expected {field.allowed}.')
  ok_type = isinstance(value, field.types) and not (isinstance(value, bool) and bool not in field.types)
  if not ok_type or (field.check is not None and not field.check(value)):
    raise ConfigError(f'config.{path}={value!r} is not allowed: expected {field.allowed}.')


def validate(config) -> None:
  """Checks every field; raises ConfigError naming the first bad one."""
  for path in SCHEMA:
    try:
      value = lookup(config, path)
    except KeyError:
      raise ConfigError(f'config.{path} is missing: expected {SCHEMA[path].allowed}.') from None
    check_field(path, value)
  for path, _ in iter_fields(config):
    if path not in SCHEMA and path.split('.')[0] not in FREE_SECTIONS:
      raise ConfigError(f'config.{path} is not a known field; see efficiency/config.py SCHEMA.')
  m = config.measure
  if m.max_calls < m.min_calls:
    raise ConfigError(f'config.measure.max_calls={m.max_calls} is not allowed: expected >= '
                      f'config.measure.min_calls={m.min_calls}.')
  if m.max_time_s < m.min_time_s:
    raise ConfigError(f'config.measure.max_time_s={m.max_time_s} is not allowed: expected >= '
                      f'config.measure.min_time_s={m.min_time_s}.')
  t = config.train
  if t.warmup_epochs >= t.epochs and t.warmup_epochs > 0:
    raise ConfigError(f'config.train.warmup_epochs={t.warmup_epochs} is not allowed: expected fewer '
                      f'than config.train.epochs={t.epochs}.')
  _validate_names(config)


def _validate_names(config) -> None:
  # Imported here: these registries pull in jax/flax and the data package.
  from efficiency.data import transforms
  from efficiency.models import registry
  if config.input.resize not in transforms.RESIZE_METHODS:
    raise ConfigError(f'config.input.resize={config.input.resize!r} is not allowed: expected one of '
                      + ', '.join(sorted(transforms.RESIZE_METHODS)) + '.')
  registry.check_model_config(dict(config.model))  # raises ConfigError
  if config.dataset.name == 'image_folder' and not config.dataset.path:
    raise ConfigError('config.dataset.path=None is not allowed: dataset "image_folder" needs the '
                      'folder of class subfolders.')
  if config.sweep is not None:
    from efficiency.sweeps import expand
    expand.validate_sweep(config)  # raises ConfigError


def to_dict(config) -> dict:
  """A plain, JSON-serialisable dict of the config (for workdirs and hashing)."""
  return config.to_dict() if hasattr(config, 'to_dict') else dict(config)


def load_config_file(path: str) -> ml_collections.ConfigDict:
  """Loads `get_config()` from a config file the way `--config=path` does (for tests and tools)."""
  import importlib.util
  import os
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if root not in sys.path:
    sys.path.insert(0, root)  # config files import each other as `configs.<name>`
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  if spec is None or not os.path.exists(path):
    raise ConfigError(f'--config={path} does not exist.')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()
