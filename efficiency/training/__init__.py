"""Training and evaluation: optax set-up, jitted steps, the loop, orbax checkpoints."""

from efficiency.training.inputs import Inputs, prepare_inputs
from efficiency.training.evaluation import evaluate_model, evaluate_workdir
from efficiency.training.loop import train
from efficiency.training.sharding import DataParallel, data_parallel
from efficiency.training.trained import build_model, load_config, load_trained

__all__ = ['Inputs', 'prepare_inputs', 'train', 'evaluate_model', 'evaluate_workdir', 'DataParallel', 'data_parallel',
           'build_model', 'load_config', 'load_trained']
