"""Classification losses: cross-entropy with label smoothing, and knowledge distillation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array, num_classes: int,
                  label_smoothing: float = 0.0) -> jax.Array:
  """Per-example cross-entropy against one-hot labels smoothed by `label_smoothing`."""
  targets = jax.nn.one_hot(labels, num_classes)
  if label_smoothing > 0:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def distillation(student_logits: jax.Array, teacher_logits: jax.Array,
                 temperature: float) -> jax.Array:
  """Per-example KL(teacher || student) at `temperature`, scaled by T^2 (Hinton et al., 2015)."""
  t = temperature
  teacher = jax.nn.softmax(teacher_logits / t)
  log_student = jax.nn.log_softmax(student_logits / t)
  log_teacher = jax.nn.log_softmax(teacher_logits / t)
  return (t * t) * jnp.sum(teacher * (log_teacher - log_student), axis=-1)
