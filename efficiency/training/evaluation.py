"""Top-1 accuracy, per-class accuracy and the confusion matrix on a held-out split."""

from __future__ import annotations

import numpy as np

from flax import nnx

from efficiency.training import steps
from efficiency.training.inputs import Inputs, prepare_inputs
from efficiency.training.sharding import DataParallel, data_parallel
from efficiency.training.trained import load_trained


def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_classes: int,
                           loss_sum: float | None = None) -> dict:
  """Rows of the confusion matrix are true classes, columns predicted classes."""
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (labels, predictions), 1)
  per_class_total = confusion.sum(axis=1)
  with np.errstate(invalid='ignore', divide='ignore'):
    per_class = np.where(per_class_total > 0, np.diag(confusion) / np.maximum(per_class_total, 1),
                         np.nan)
  n = int(labels.shape[0])
  return dict(
      accuracy=float(np.trace(confusion) / max(n, 1)),
      loss=None if loss_sum is None else float(loss_sum / max(n, 1)),
      num_examples=n,
      per_class_accuracy=[None if np.isnan(a) else float(a) for a in per_class],
      confusion_matrix=confusion.tolist(),
  )


def predict(eval_step, model_state, images: np.ndarray, labels: np.ndarray, batch_size: int,
            parallel: DataParallel) -> tuple[np.ndarray, float]:
  """Runs `eval_step` over every example; the last batch is padded (and masked) to a full one
  so the step compiles once."""
  n = images.shape[0]
  predictions, loss_sum = [], 0.0
  for start in range(0, n, batch_size):
    x, y = images[start:start + batch_size], labels[start:start + batch_size]
    real = x.shape[0]
    mask = np.ones((batch_size,), np.float32)
    if real < batch_size:
      pad = batch_size - real
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
      y = np.concatenate([y, np.zeros((pad,), y.dtype)])
      mask[real:] = 0
    pred, loss = eval_step(model_state, parallel.put_batch(x), parallel.put_batch(y),
                           parallel.put_batch(mask))
    predictions.append(parallel.fetch(pred)[:real])
    loss_sum += float(loss)
  return np.concatenate(predictions) if predictions else np.zeros((0,), np.int32), loss_sum


def evaluate_model(model: nnx.Module, inputs: Inputs, batch_size: int, parallel=None) -> dict:
  """Top-1, per-class accuracy and confusion matrix of `model` (eval mode) on the test split."""
  parallel = parallel or data_parallel()
  model.eval()
  graphdef, state = nnx.split(model)
  eval_step = steps.make_eval_step(graphdef, num_classes=inputs.num_classes)
  state = parallel.put_state(state)
  batch_size = min(batch_size, max(parallel.device_count,
                                   -(-inputs.test_x.shape[0] // parallel.device_count)
                                   * parallel.device_count))
  predictions, loss_sum = predict(eval_step, state, inputs.test_x, inputs.test_y,
                                             batch_size, parallel)
  return classification_metrics(predictions, inputs.test_y, inputs.num_classes, loss_sum)


def evaluate_workdir(workdir: str, config) -> dict:
  """Restores `workdir` and evaluates it with `config`'s inputs (another resolution, say)."""
  inputs = prepare_inputs(config, with_train=False)
  trained = load_trained(workdir, inputs.num_classes, inputs.input_shape[-1])
  metrics = evaluate_model(trained.model, inputs, config.train.eval_batch_size)
  return dict(workdir=workdir, epoch=trained.epoch, input=config.input.to_dict(),
              input_shape=list(inputs.input_shape), dataset=config.dataset.name,
              split=config.dataset.test_split, **metrics)
