"""Jitted train and eval steps over `nnx.split` state (no NNX Python overhead per step)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from efficiency.training import losses


class TraceCounter:
  """Counts how often a step function is traced: more than once means a recompilation."""

  def __init__(self):
    self.count = 0

  def __call__(self):
    self.count += 1


def make_train_step(graphdef, *, num_classes: int, label_smoothing: float,
                    distill_alpha: float = 0.0, distill_temperature: float = 1.0,
                    traced: TraceCounter | None = None) -> Callable:
  """`step(state, images, labels, teacher_logits) -> (state, metrics)`; state = nnx.state((model, optimizer)).

  With `distill_alpha` > 0 the loss is (1 - a) * CE(labels) + a * KD(teacher_logits).
  The metrics are sums over the batch (loss, correct) so epochs add up exactly.
  """

  def step(state, images, labels, teacher_logits):
    if traced is not None:
      traced()
    model, optimizer = nnx.merge(graphdef, state)

    def loss_fn(model):
      logits = model(images)
      loss = losses.cross_entropy(logits, labels, num_classes, label_smoothing)
      if distill_alpha > 0:
        kd = losses.distillation(logits, teacher_logits, distill_temperature)
        loss = (1.0 - distill_alpha) * loss + distill_alpha * kd
      return loss.mean(), (loss, logits)

    (_, (per_example, logits)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    metrics = dict(loss_sum=per_example.sum(),
                   correct=jnp.sum(jnp.argmax(logits, -1) == labels),
                   count=jnp.asarray(labels.shape[0]))
    return nnx.state((model, optimizer)), metrics

  return jax.jit(step, donate_argnums=0)


def make_eval_step(graphdef, *, num_classes: int, traced: TraceCounter | None = None) -> Callable:
  """`step(model_state, images, labels, mask) -> (predictions, loss_sum)`; padded rows have mask 0."""

  def step(state, images, labels, mask):
    if traced is not None:
      traced()
    logits = nnx.merge(graphdef, state)(images)
    loss = losses.cross_entropy(logits, labels, num_classes)
    return jnp.argmax(logits, -1), jnp.sum(loss * mask)

  return jax.jit(step)


def make_logits_fn(graphdef) -> Callable:
  """`fn(model_state, images) -> logits`, for teachers and users' own evaluation."""
  return jax.jit(lambda state, images: nnx.merge(graphdef, state)(images))
