"""Building a model from a config, and restoring a trained one from its workdir."""

from __future__ import annotations

import dataclasses
import os

import ml_collections
from flax import nnx

from efficiency import workdir as wd
from efficiency.config import validate
from efficiency.errors import WorkdirError
from efficiency.models import registry
from efficiency.training.checkpoints import Checkpoints
from efficiency.training.optim import make_optimizer


def build_model(config, num_classes: int, in_channels: int) -> nnx.Module:
  """The model of `config.model`, initialised from `config.seed`."""
  return registry.create_model(dict(config.model), num_classes=num_classes,
                               in_channels=in_channels, rngs=nnx.Rngs(config.seed))


def build_model_and_optimizer(config, num_classes: int, in_channels: int, steps_per_epoch: int):
  model = build_model(config, num_classes, in_channels)
  tx = make_optimizer(config.train, steps_per_epoch)
  return model, nnx.Optimizer(model, tx, wrt=nnx.Param)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a workdir was trained with."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.isdir(workdir):
    raise WorkdirError(f'--workdir={workdir} does not exist.')
  if not os.path.exists(path):
    raise WorkdirError(f'{path} does not exist: --workdir={workdir} holds no training run.')
  config = ml_collections.ConfigDict(wd.read_json(path))
  validate(config)
  return config


@dataclasses.dataclass
class TrainedModel:
  config: ml_collections.ConfigDict
  model: nnx.Module  # in eval mode
  epoch: int


def load_trained(workdir: str, num_classes: int, in_channels: int,
                 config: ml_collections.ConfigDict | None = None) -> TrainedModel:
  """Restores the latest checkpoint of `workdir` into a model built from abstract state."""
  config = config or load_config(workdir)
  checkpoints = Checkpoints(workdir, create=False)
  try:
    abstract = nnx.eval_shape(lambda: build_model_and_optimizer(config, num_classes, in_channels, 1))
    graphdef, abstract_state = nnx.split(abstract)
    state, meta = checkpoints.restore(abstract_state)
  finally:
    checkpoints.close()
  model, _ = nnx.merge(graphdef, state)
  model.eval()
  return TrainedModel(config, model, int(meta['epoch']))
