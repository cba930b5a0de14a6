"""The optax optimizer and learning-rate schedule described by `config.train`."""

from __future__ import annotations

import optax


def learning_rate_schedule(train_cfg, steps_per_epoch: int) -> optax.Schedule:
  """Linear warm-up from 0 to the peak rate, then cosine decay to 0 (or constant)."""
  total = max(1, train_cfg.epochs * steps_per_epoch)
  warmup = min(int(round(train_cfg.warmup_epochs * steps_per_epoch)), total - 1)
  peak = train_cfg.learning_rate
  if train_cfg.schedule == 'cosine':
    if warmup == 0:  # the same values, without optax's log line about a 0-step warm-up
      return optax.cosine_decay_schedule(peak, decay_steps=total, alpha=0.0)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=warmup, decay_steps=total, end_value=0.0)
  if warmup == 0:
    return optax.constant_schedule(peak)
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup])


def make_optimizer(train_cfg, steps_per_epoch: int, *, flat: bool = True
                   ) -> optax.GradientTransformation:
  """AdamW (decoupled weight decay) or SGD with momentum (L2 weight decay), on one flat vector.

  `optax.flatten` concatenates all gradients into one vector, so the update is
  a few fused loops over it instead of a few per parameter array: the same
  arithmetic element by element, with fewer XLA:CPU kernels per training step
  (CNN 118 -> 94, MobileNet 324 -> 245; benchmarks/RESULTS.md has the times).
  The optimizer state (and so a checkpoint) holds flat vectors accordingly. `flat=False`: one update per
  array (the benchmarks' "before" side).
  """
  schedule = learning_rate_schedule(train_cfg, steps_per_epoch)
  if train_cfg.optimizer == 'adamw':
    tx = optax.adamw(schedule, weight_decay=train_cfg.weight_decay)
  elif train_cfg.optimizer == 'sgd':
    tx = optax.chain(
        optax.add_decayed_weights(train_cfg.weight_decay),
        optax.sgd(schedule, momentum=train_cfg.momentum, nesterov=train_cfg.nesterov))
  else:
    raise ValueError(f'unknown optimizer {train_cfg.optimizer!r}')  # validate() rejects it earlier
  return optax.flatten(tx) if flat else tx
