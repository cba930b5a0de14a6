"""Orbax checkpoints of the training state, restored into abstract state from `nnx.eval_shape`.

A checkpoint step is the number of finished epochs. Orbax writes each step to
a temporary folder and renames it when complete, so a run killed mid-save
leaves the previous checkpoint intact and the partial one is ignored.
"""

from __future__ import annotations

import os

import orbax.checkpoint as ocp

from efficiency.errors import CheckpointError


class Checkpoints:
  """Saves and restores `{'state': nnx.State, 'meta': dict}` under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, *, keep: int = 2, create: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    if not create and not os.path.isdir(self.directory):
      raise CheckpointError(f'{self.directory} does not exist: train this workdir first '
                            '(train.py --workdir=...).')
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create,
                                           enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_epoch(self) -> int | None:
    return self._manager.latest_step()

  def save(self, epoch: int, state, meta: dict) -> None:
    self._manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
    self._manager.wait_until_finished()

  def restore(self, abstract_state, epoch: int | None = None):
    """Returns (state, meta) of `epoch` (default: latest); CheckpointError if missing or corrupt."""
    epoch = self.latest_epoch() if epoch is None else epoch
    if epoch is None:
      raise CheckpointError(f'{self.directory} holds no complete checkpoint.')
    try:
      restored = self._manager.restore(epoch, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types for truncated or mismatched files
      first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise CheckpointError(f'checkpoint {self.directory}/{epoch} cannot be restored '
                            f'({type(e).__name__}: {first_line[:200]}); delete it to retrain.') from e
    return restored['state'], restored['meta']

  def close(self) -> None:
    self._manager.close()
