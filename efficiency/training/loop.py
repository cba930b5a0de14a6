"""The training loop: epochs of jitted steps, progress, per-epoch metrics, checkpoints, resume.

`train(config, workdir)` writes into the workdir (see WORKSPACE.md):
config.json, metrics.jsonl (one line per epoch), checkpoints/, eval.json and
result.json. A rerun on a finished workdir returns its result; a run that was
interrupted resumes from its latest checkpoint and ends with the same metrics.
"""

from __future__ import annotations

import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from efficiency import data
from efficiency import workdir as wd
from efficiency.config import to_dict, validate
from efficiency.errors import ConfigError, DivergenceError, WorkdirError
from efficiency.stages import StageTimer
from efficiency.training import steps
from efficiency.training.evaluation import evaluate_model
from efficiency.training.checkpoints import Checkpoints
from efficiency.training.inputs import Inputs, prepare_inputs
from efficiency.training.sharding import StepWindow, data_parallel
from efficiency.training.trained import build_model_and_optimizer, load_config, load_trained


def _differing_fields(a: dict, b: dict, prefix: str = '') -> list[str]:
  out = []
  for key in sorted(set(a) | set(b)):
    va, vb = a.get(key), b.get(key)
    if isinstance(va, dict) and isinstance(vb, dict):
      out += _differing_fields(va, vb, f'{prefix}{key}.')
    elif va != vb:
      out.append(prefix + key)
  return out


def check_workdir_config(workdir: str, config_dict: dict) -> None:
  """A workdir holds one config: a different one is refused, so no earlier result is touched."""
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    saved = wd.read_json(path, required=('model', 'train'))
    if saved != config_dict:
      fields = ', '.join(_differing_fields(saved, config_dict)[:5])
      raise WorkdirError(f'--workdir={workdir} holds a run of another config (differs in {fields}); '
                         'use a new --workdir.')


def train(config, workdir: str, *, inputs: Inputs | None = None, wait_for_lock: bool = False) -> dict:
  """Trains (or resumes, or reuses) the run of `config` in `workdir`; returns result.json.

  `inputs` skips data preparation when the caller already holds them; with
  `wait_for_lock` a second process waits for the first instead of failing
  (sweep shards that share a point).
  """
  validate(config)
  workdir = wd.ensure_writable(workdir)
  with wd.locked(workdir, wait=wait_for_lock):
    config_dict = to_dict(config)
    check_workdir_config(workdir, config_dict)
    result_path = os.path.join(workdir, 'result.json')
    if os.path.exists(result_path):
      logging.info('%s is already trained; reusing its result.', workdir)
      return wd.read_json(result_path, required=('status', 'test', 'epochs', 'train_seconds',
                                                 'device_count'))
    return _train(config, config_dict, workdir, inputs)


def _teacher_logits(config, inputs: Inputs) -> np.ndarray | None:
  """Logits of the trained teacher on every training example (its own input pipeline)."""
  if not config.train.teacher_workdir or config.train.distill_alpha == 0:
    return None
  teacher_workdir = config.train.teacher_workdir
  if not os.path.isfile(os.path.join(teacher_workdir, 'result.json')):
    raise ConfigError(f'config.train.teacher_workdir={teacher_workdir!r} is not allowed: expected a '
                      'finished training workdir (one with result.json).')
  teacher_config = load_config(teacher_workdir)
  teacher_inputs = prepare_inputs(teacher_config)
  teacher = load_trained(teacher_workdir, teacher_inputs.num_classes,
                         teacher_inputs.input_shape[-1], teacher_config)
  graphdef, state = nnx.split(teacher.model)
  logits_fn = steps.make_logits_fn(graphdef)
  chunks = [np.asarray(logits_fn(state, teacher_inputs.train_x[i:i + 1024]))
            for i in range(0, teacher_inputs.train_x.shape[0], 1024)]
  return np.concatenate(chunks).astype(np.float32)


def _train(config, config_dict: dict, workdir: str, inputs: Inputs | None) -> dict:
  timer = StageTimer()
  tc = config.train
  with timer('data'):
    inputs = inputs or prepare_inputs(config)
    teacher_logits = _teacher_logits(config, inputs)
  parallel = data_parallel()
  parallel.check_batch(tc.batch_size, 'train.batch_size')
  parallel.check_batch(tc.eval_batch_size, 'train.eval_batch_size')
  n_train = inputs.train_x.shape[0]
  # Each process trains on its own strided shard of the training set and feeds its
  # batch_size / process_count examples of every global batch (one process: everything).
  process_count = jax.process_count()
  everything = np.arange(n_train)
  my_examples, _ = data.shard_for_process(everything, everything, jax.process_index(),
                                          process_count, equal_sizes=process_count > 1)
  local_batch = tc.batch_size // process_count
  steps_per_epoch = data.num_batches(len(my_examples), local_batch, drop_remainder=True)
  if steps_per_epoch == 0:
    raise ConfigError(f'config.train.batch_size={tc.batch_size} is not allowed: expected at most the '
                      f'{n_train} training examples.')
  wd.write_json(os.path.join(workdir, 'config.json'), config_dict)

  model, optimizer = build_model_and_optimizer(config, inputs.num_classes, inputs.input_shape[-1],
                                               steps_per_epoch)
  model.train()
  graphdef, state = nnx.split((model, optimizer))
  checkpoints = Checkpoints(workdir, keep=tc.keep_checkpoints)
  start_epoch = 0
  if checkpoints.latest_epoch() is not None:
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    state, meta = checkpoints.restore(abstract)
    start_epoch = int(meta['epoch'])
    logging.info('Resuming %s from the checkpoint after epoch %d.', workdir, start_epoch)
  state = parallel.put_state(state)
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  history = [r for r in wd.read_jsonl(metrics_path) if r.get('epoch', 0) <= start_epoch]
  wd.write_jsonl(metrics_path, history)

  train_traces = steps.TraceCounter()
  train_step = steps.make_train_step(
      graphdef, num_classes=inputs.num_classes, label_smoothing=tc.label_smoothing,
      distill_alpha=tc.distill_alpha if teacher_logits is not None else 0.0,
      distill_temperature=tc.distill_temperature, traced=train_traces)
  if teacher_logits is None:
    teacher_logits = np.zeros((n_train, inputs.num_classes), np.float32)

  def device_batch(idx):
    return (parallel.put_local_batch(inputs.train_x[idx]),
            parallel.put_local_batch(inputs.train_y[idx]),
            parallel.put_local_batch(teacher_logits[idx]))

  first = my_examples[:local_batch]
  with timer('compile'):
    compiled_step = train_step.lower(state, *device_batch(first)).compile()

  epoch_seconds = []
  try:  # closed however the epochs end: finished, diverged or interrupted
    for epoch in range(start_epoch + 1, tc.epochs + 1):
      start = time.perf_counter()
      totals = None
      in_flight = StepWindow()
      with timer('train'):
        for idx, _ in data.batches(my_examples, my_examples, local_batch, seed=config.seed,
                                   epoch=epoch, shuffle=True, drop_remainder=True):
          state, m = compiled_step(state, *device_batch(idx))
          in_flight.add(m)
          totals = m if totals is None else jax.tree.map(lambda a, b: a + b, totals, m)
        totals = {k: float(v) for k, v in jax.device_get(totals).items()}
      seconds = time.perf_counter() - start
      epoch_seconds.append(seconds)
      row = dict(epoch=epoch, loss=totals['loss_sum'] / totals['count'],
                 train_accuracy=totals['correct'] / totals['count'], seconds=seconds,
                 steps_per_s=steps_per_epoch / seconds)
      wd.append_jsonl(metrics_path, [row])
      if not math.isfinite(row['loss']):
        raise _diverged(f'the loss is {row["loss"]} at epoch {epoch}', checkpoints, tc)
      left = np.mean(epoch_seconds[-5:]) * (tc.epochs - epoch)
      logging.info('epoch %d/%d  %.1f steps/s  loss %.4f  train acc %.4f  time left %.1fs',
                   epoch, tc.epochs, row['steps_per_s'], row['loss'], row['train_accuracy'], left)
      if epoch % tc.checkpoint_every_epochs == 0 or epoch == tc.epochs:
        # A finite loss can still leave non-finite weights after the epoch's last update;
        # such a state must never replace a good checkpoint.
        if not _all_finite(state):
          raise _diverged(f'the weights or optimizer state are not finite after epoch {epoch}',
                          checkpoints, tc)
        with timer('checkpoint'):
          checkpoints.save(epoch, state, dict(epoch=epoch))
  finally:
    checkpoints.close()

  model, _ = nnx.merge(graphdef, state)
  model.eval()
  with timer('evaluate'):
    test = evaluate_model(model, inputs, tc.eval_batch_size, parallel)
  if train_traces.count > 1:
    logging.warning('The train step was compiled %d times (expected once).', train_traces.count)
  result = dict(
      status='ok', workdir=workdir, epochs=tc.epochs, resumed_from_epoch=start_epoch,
      test=test, final_train_loss=_last_loss(metrics_path),
      train_seconds=float(sum(epoch_seconds)), steps_per_epoch=steps_per_epoch,
      train_compilations=train_traces.count, device_count=parallel.device_count,
      stage_seconds=timer.seconds, input_shape=list(inputs.input_shape))
  wd.write_json(os.path.join(workdir, 'eval.json'), test)
  wd.write_json(os.path.join(workdir, 'result.json'), result)
  logging.info('%s: test accuracy %.4f (%s)', workdir, test['accuracy'], timer.line())
  return result


def _all_finite(state) -> bool:
  floats = [x for x in jax.tree.leaves(state)
            if hasattr(x, 'dtype') and jnp.issubdtype(x.dtype, jnp.floating)]
  return bool(jnp.all(jnp.stack([jnp.isfinite(x).all() for x in floats]))) if floats else True


def _diverged(what: str, checkpoints: Checkpoints, train_cfg) -> DivergenceError:
  """The error that stops a diverged run; the latest good checkpoint stays as it is."""
  kept = checkpoints.latest_epoch()
  kept_text = f'the checkpoint after epoch {kept} is kept' if kept else 'no checkpoint was written'
  return DivergenceError(
      f'training diverged: {what} ({kept_text}); lower config.train.learning_rate='
      f'{train_cfg.learning_rate} or config.train.weight_decay={train_cfg.weight_decay}.')


def _last_loss(metrics_path: str) -> float | None:
  rows = wd.read_jsonl(metrics_path)
  return rows[-1]['loss'] if rows else None
