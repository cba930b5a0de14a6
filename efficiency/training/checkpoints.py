"""Orbax checkpoints of the training state, restored into abstract state from `nnx.eval_shape`.

A checkpoint step is the number of finished epochs. Orbax writes each step to
a temporary folder and renames it when complete, so a run killed mid-save
leaves the previous checkpoint intact and the partial one is ignored. Each
checkpoint's metadata records `state_format`, so a checkpoint from a version
whose state was laid out differently is named as such instead of as corrupt.
Ctrl-C or SIGTERM during a save takes effect once the save is done: the epoch
just finished is kept, and orbax is not interrupted mid-write (it then logged
a traceback of its own before our one-line message).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Iterator

import orbax.checkpoint as ocp

from efficiency.errors import CheckpointError, first_line

# The layout of the saved state. 1 (absent from the metadata): one optimizer entry per
# parameter array. 2 (2026-12-04): optimizer state of `optax.flatten`, one flat vector each.
STATE_FORMAT = 2


def _reason(error: Exception) -> str:
  """The first line of an orbax/TensorStore error, without its pointer to more details."""
  text = first_line(str(error)).split(' See full TensorStore details')[0]
  text = text if len(text) <= 160 else text[:157] + '...'
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


_restore_failed = False


def _drop_failed_restore_noise() -> None:
  """When a restore fails, orbax's reads still in flight end after the error has reached us, and
  Python would print each as an unraisable exception with its traceback on stderr: callbacks into
  orbax's closed asyncio loop (`RuntimeError('Event loop is closed')`) and, collected later, the
  read coroutines of the failed restore with their error (already reported as the
  CheckpointError). Those, and only those, are dropped."""
  previous = sys.unraisablehook
  if getattr(previous, 'drops_failed_restore_noise', False):
    return

  def hook(unraisable) -> None:
    error = unraisable.exc_value
    closed_loop = isinstance(error, RuntimeError) and str(error) == 'Event loop is closed'
    code = getattr(unraisable.object, 'cr_code', None)
    failed_read = (_restore_failed and code is not None
                   and f'{os.sep}orbax{os.sep}' in code.co_filename)
    if not (closed_loop or failed_read):
      previous(unraisable)

  hook.drops_failed_restore_noise = True
  sys.unraisablehook = hook


_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
  """SIGINT and SIGTERM received inside the block are delivered again right after it, to the
  handlers that were in place before (main thread only; elsewhere Python delivers no signals)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  received: list[int] = []
  previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
              for signum in _DEFERRED_SIGNALS}
  try:
    yield
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, signal.SIG_DFL if handler is None else handler)
  for signum in dict.fromkeys(received):
    signal.raise_signal(signum)


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
    meta = {**meta, 'state_format': STATE_FORMAT}
    with signals_deferred():
      self._manager.save(epoch, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
      self._manager.wait_until_finished()

  def restore(self, abstract_state, epoch: int | None = None):
    """Returns (state, meta) of `epoch` (default: latest); CheckpointError if missing or corrupt."""
    epoch = self.latest_epoch() if epoch is None else epoch
    if epoch is None:
      raise CheckpointError(f'{self.directory} holds no complete checkpoint.')
    # Checked before the state is read: after a failed restore, orbax's reads still in flight
    # would race a second one.
    found = self._state_format(epoch)
    if found is not None and found != STATE_FORMAT:
      raise CheckpointError(f'checkpoint {self.directory}/{epoch} holds state format {found}, '
                            'written by another version of efficiency; this version reads '
                            f'format {STATE_FORMAT}: retrain this workdir (no checkpoint in '
                            'it will restore).')
    _drop_failed_restore_noise()
    try:
      restored = self._manager.restore(epoch, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types for truncated or mismatched files
      global _restore_failed
      _restore_failed = True
      raise CheckpointError(f'checkpoint {self.directory}/{epoch} cannot be restored '
                            f'({_reason(e)}): a file is truncated or corrupt, or the model changed; '
                            f'delete {self.directory}/{epoch} to resume from an earlier checkpoint '
                            'or retrain.') from e
    meta = restored['meta']
    if not isinstance(meta, dict) or not isinstance(meta.get('epoch'), int):
      raise CheckpointError(f'checkpoint {self.directory}/{epoch} has corrupt metadata ({meta!r}); '
                            f'delete {self.directory}/{epoch} to resume from an earlier checkpoint.')
    return restored['state'], meta

  def _state_format(self, epoch: int) -> int | None:
    """The checkpoint's `state_format` (1 when its metadata predates the field); None if unreadable."""
    try:
      meta = self._manager.restore(
          epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    except Exception:  # noqa: BLE001 - unreadable metadata: the caller reports the restore error
      return None
    return meta.get('state_format', 1) if isinstance(meta, dict) else None

  def close(self) -> None:
    self._manager.close()
