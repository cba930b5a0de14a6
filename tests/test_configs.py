"""Every config file loads and validates; the schema rejects bad values with one line naming the field."""

import glob
import os

import pytest

from efficiency import config as cfg
from efficiency.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(p for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                      if os.path.basename(p) != '__init__.py')


def test_there_are_config_files():
  names = {os.path.relpath(p, ROOT) for p in CONFIG_FILES}
  assert {'configs/base.py', 'configs/mnist.py'} <= names


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_file_loads_and_validates(path):
  config = cfg.load_config_file(path)
  cfg.validate(config)
  with open(path) as f:
    source = f.read()
  assert 'get_config' in source
  docstring = source.split('"""')[1]
  assert '--config=configs/' in docstring, 'the docstring must show the command that runs the config'


@pytest.mark.parametrize('field,value', [
    ('model.width', 0), ('model.depth', -1), ('train.batch_size', 0), ('train.epochs', 0),
    ('train.learning_rate', -1.0), ('train.learning_rate', float('nan')), ('input.resolution', 0),
    ('train.optimizer', 'adam'), ('train.schedule', 'linear'), ('input.resize', 'fancy'),
    ('model.name', 'transformer'), ('input.center_crop', 0.0), ('train.label_smoothing', 1.0),
])
def test_bad_value_names_field_and_value(field, value):
  config = cfg.load_config_file(os.path.join(ROOT, 'configs', 'base.py'))
  section, leaf = field.split('.')
  with config.unlocked():
    config[section][leaf] = value
  with pytest.raises(ConfigError) as info:
    cfg.validate(config)
  message = str(info.value)
  assert '\n' not in message
  assert f'config.{field}=' in message
  assert 'expected' in message or 'allowed' in message


def test_unknown_field_is_rejected():
  config = cfg.load_config_file(os.path.join(ROOT, 'configs', 'base.py'))
  with config.unlocked():
    config.train.epoch = 3
  with pytest.raises(ConfigError, match='config.train.epoch is not a known field'):
    cfg.validate(config)


def test_missing_config_file():
  with pytest.raises(ConfigError, match='does not exist'):
    cfg.load_config_file('/nonexistent/config.py')
