"""Train -> checkpoint -> restore -> evaluate on a tiny config; an interrupted run resumes exactly."""

import os

import numpy as np
import pytest

from efficiency import config as cfg
from efficiency import training
from efficiency import workdir as wd
from efficiency.errors import WorkdirError
from efficiency.training import checkpoints as ckpt_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def tiny(tfds_dir):
  config = cfg.load_config_file(os.path.join(ROOT, 'configs', 'tiny.py'))
  config.dataset.data_dir = tfds_dir
  return config


def test_train_writes_workdir_and_restores(tiny, tmp_path):
  workdir = str(tmp_path / 'run')
  result = training.train(tiny, workdir)
  assert result['status'] == 'ok'
  for name in ('config.json', 'metrics.jsonl', 'eval.json', 'result.json'):
    assert os.path.exists(os.path.join(workdir, name)), name
  rows = wd.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['epoch'] for r in rows] == [1, 2]
  test = result['test']
  assert test['num_examples'] == 360
  assert np.sum(test['confusion_matrix']) == 360
  assert 0.0 <= test['accuracy'] <= 1.0
  assert test['accuracy'] == pytest.approx(np.trace(test['confusion_matrix']) / 360)
  assert result['train_compilations'] == 1

  restored = training.evaluate_workdir(workdir, training.load_config(workdir))
  assert restored['accuracy'] == pytest.approx(test['accuracy'])
  assert restored['epoch'] == 2

  again = training.train(tiny, workdir)  # a finished run is reused, not retrained
  assert again == result


def test_evaluate_at_other_resolution(tiny, tmp_path):
  workdir = str(tmp_path / 'run')
  training.train(tiny, workdir)
  config = training.load_config(workdir)
  config.input.resolution = 6
  result = training.evaluate_workdir(workdir, config)
  assert result['input_shape'] == [6, 6, 1]
  assert result['num_examples'] == 360


def test_interrupted_run_resumes_to_same_result(tiny, tmp_path, monkeypatch):
  tiny.train.epochs = 3
  reference = training.train(tiny, str(tmp_path / 'reference'))

  original_save = ckpt_module.Checkpoints.save

  def save_then_die(self, epoch, state, meta):
    original_save(self, epoch, state, meta)
    if epoch == 2:
      raise KeyboardInterrupt

  monkeypatch.setattr(ckpt_module.Checkpoints, 'save', save_then_die)
  workdir = str(tmp_path / 'interrupted')
  with pytest.raises(KeyboardInterrupt):
    training.train(tiny, workdir)
  assert not os.path.exists(os.path.join(workdir, 'result.json'))
  monkeypatch.setattr(ckpt_module.Checkpoints, 'save', original_save)

  resumed = training.train(tiny, workdir)
  assert resumed['resumed_from_epoch'] == 2
  assert resumed['test']['accuracy'] == reference['test']['accuracy']
  assert resumed['final_train_loss'] == pytest.approx(reference['final_train_loss'], rel=1e-6)
  rows = wd.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['epoch'] for r in rows] == [1, 2, 3]


def test_workdir_with_other_config_is_refused(tiny, tmp_path):
  workdir = str(tmp_path / 'run')
  training.train(tiny, workdir)
  tiny.model.width = 4
  with pytest.raises(WorkdirError, match='holds a run of another config'):
    training.train(tiny, workdir)


# A failed orbax restore leaves a TensorStore read coroutine that Python reports as unraisable.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_checkpoints_record_their_state_format_and_name_an_older_one(tmp_path):
  import jax
  import jax.numpy as jnp
  import orbax.checkpoint as ocp
  from efficiency.errors import CheckpointError
  state = {'params': jnp.arange(4.0), 'opt': jnp.zeros(4)}
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
  current = ckpt_module.Checkpoints(str(tmp_path / 'new'))
  current.save(1, state, dict(epoch=1))
  restored, meta = current.restore(abstract)
  assert meta == dict(epoch=1, state_format=ckpt_module.STATE_FORMAT)
  np.testing.assert_array_equal(restored['params'], state['params'])
  # The same layout and format but a changed model: the general message.
  with pytest.raises(CheckpointError, match='cannot be restored'):
    current.restore({'params': jax.ShapeDtypeStruct((5,), jnp.float32), 'opt': abstract['opt']})
  current.close()
  # A checkpoint written before the field existed, with per-array optimizer entries.
  older = ckpt_module.Checkpoints(str(tmp_path / 'old'))
  older._manager.save(3, args=ocp.args.Composite(
      state=ocp.args.StandardSave({'params': state['params'], 'opt': {'mu': jnp.zeros(4)}}),
      meta=ocp.args.JsonSave(dict(epoch=3))), force=True)
  older._manager.wait_until_finished()
  with pytest.raises(CheckpointError) as error:
    older.restore(abstract)
  message = str(error.value)
  assert 'holds state format 1' in message and 'retrain this workdir' in message
  assert 'delete' not in message and '\n' not in message
  older.close()


def test_ctrl_c_during_a_save_lands_after_the_checkpoint_is_whole(tmp_path, monkeypatch):
  import signal
  import jax
  import jax.numpy as jnp
  state = {'params': jnp.arange(4.0)}
  checkpoints = ckpt_module.Checkpoints(str(tmp_path / 'run'))
  real_save = checkpoints._manager.save
  events = []

  def save_hit_by_ctrl_c(*args, **kwargs):   # the signal arrives while orbax writes
    signal.raise_signal(signal.SIGINT)
    events.append('still saving')
    return real_save(*args, **kwargs)

  monkeypatch.setattr(checkpoints._manager, 'save', save_hit_by_ctrl_c)
  handler = signal.getsignal(signal.SIGINT)   # Python's (conftest.ctrl_c_delivered)
  with pytest.raises(KeyboardInterrupt):
    checkpoints.save(2, state, dict(epoch=2))
  assert signal.getsignal(signal.SIGINT) is handler   # the previous handler is back
  assert events == ['still saving'] and checkpoints.latest_epoch() == 2
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
  np.testing.assert_array_equal(checkpoints.restore(abstract)[0]['params'], state['params'])
  checkpoints.close()
  with ckpt_module.signals_deferred():   # nothing received: nothing raised
    pass
