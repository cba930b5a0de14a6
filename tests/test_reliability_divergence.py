"""Divergence: a NaN or infinite loss, or weights that are not finite when a checkpoint is due, stop
the run with DivergenceError before a bad checkpoint replaces a good one."""

import os

import jax.numpy as jnp
import pytest
from flax import nnx

from efficiency import training
from efficiency import workdir as wd
from efficiency.errors import DivergenceError
from efficiency.training import checkpoints as ckpt_module
from efficiency.training import loop, losses
from test_reliability import snapshot, tiny_config


def _checkpoint_epochs(workdir) -> list[int]:
  folder = os.path.join(workdir, 'checkpoints')
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def test_divergence_stops_before_a_bad_checkpoint(tfds_dir, tmp_path):
  config = tiny_config(tfds_dir)
  # SGD's L2 term lr * weight_decay = 3 per step flips and doubles the weights every step.
  config.train.update(optimizer='sgd', learning_rate=0.5, weight_decay=6.0, momentum=0.0,
                      schedule='constant', epochs=4)
  workdir = str(tmp_path / 'run')
  with pytest.raises(DivergenceError) as info:
    training.train(config, workdir)
  message = str(info.value)
  assert 'training diverged' in message and 'config.train.learning_rate=0.5' in message
  diverged_epoch = wd.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))[-1]['epoch']
  saved = _checkpoint_epochs(workdir)
  assert saved and max(saved) < diverged_epoch
  assert f'the checkpoint after epoch {max(saved)} is kept' in message
  assert not os.path.exists(os.path.join(workdir, 'result.json'))
  kept = training.load_trained(workdir, 10, 1, config)
  assert loop._all_finite(nnx.state(kept.model))
  before = snapshot(os.path.join(workdir, 'checkpoints'))
  with pytest.raises(DivergenceError):  # a rerun resumes from the good checkpoint and stops again
    training.train(config, workdir)
  assert snapshot(os.path.join(workdir, 'checkpoints')) == before


def test_nan_loss_stops_the_run_and_keeps_the_checkpoint(tfds_dir, tmp_path, monkeypatch):
  config = tiny_config(tfds_dir)
  config.train.epochs = 3
  workdir = str(tmp_path / 'run')
  original_save = ckpt_module.Checkpoints.save

  def save_then_stop(self, epoch, state, meta):
    original_save(self, epoch, state, meta)
    raise KeyboardInterrupt

  monkeypatch.setattr(ckpt_module.Checkpoints, 'save', save_then_stop)
  with pytest.raises(KeyboardInterrupt):
    training.train(config, workdir)
  monkeypatch.setattr(ckpt_module.Checkpoints, 'save', original_save)
  before = snapshot(os.path.join(workdir, 'checkpoints'))
  real_loss = losses.cross_entropy
  monkeypatch.setattr(losses, 'cross_entropy', lambda *args, **kwargs: real_loss(*args, **kwargs)
                      * jnp.nan)
  with pytest.raises(DivergenceError, match=r'the loss is nan at epoch 2 \(the checkpoint after '
                     r'epoch 1 is kept\); lower config\.train\.learning_rate=0\.003'):
    training.train(config, workdir)
  assert snapshot(os.path.join(workdir, 'checkpoints')) == before
  assert wd.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))[-1]['loss'] is None


def test_non_finite_weights_are_detected():
  good = {'w': jnp.ones((3,)), 'count': jnp.asarray(3, jnp.int32)}
  assert loop._all_finite(good)
  assert not loop._all_finite(dict(good, b=jnp.array([0.0, jnp.inf])))
  assert not loop._all_finite(dict(good, b=jnp.array([jnp.nan], jnp.bfloat16)))
