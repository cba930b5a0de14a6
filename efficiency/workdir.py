"""Files in a workdir: atomic writes, checked reads and a lock against a second process.

Every results file is written to a temporary file in the same folder and then
renamed over the old one, so a reader (or a process killed mid-write) never sees
half a file. JSON that cannot be parsed raises WorkdirError naming the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sys
import tempfile
from typing import Any, Iterator

from efficiency.errors import WorkdirError


def is_primary() -> bool:
  """True in process 0 of a multi-process (jax.distributed) job, and in any single process.

  Only the primary process writes results, logs and locks; the others compute.
  """
  jax = sys.modules.get('jax')
  return jax is None or jax.process_index() == 0


def _jsonable(value: Any) -> Any:
  """Plain JSON: numpy scalars and arrays become Python numbers and lists, NaN becomes null."""
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if hasattr(value, 'tolist'):
    return _jsonable(value.tolist())
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def dumps(value: Any, indent: int | None = None) -> str:
  return json.dumps(_jsonable(value), indent=indent, sort_keys=False)


def atomic_write_text(path: str, text: str) -> None:
  """Writes `text` to `path` so that the file is either the old or the new version.

  In a multi-process job only process 0 writes.
  """
  if not is_primary():
    return
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise


def write_json(path: str, value: Any) -> None:
  atomic_write_text(path, dumps(value, indent=2) + '\n')


def read_json(path: str, *, required: tuple[str, ...] = ()) -> Any:
  """Reads a JSON file; a missing or corrupt file raises WorkdirError naming it.

  With `required`, the file must hold an object with these keys.
  """
  try:
    with open(path) as f:
      value = json.load(f)
  except FileNotFoundError:
    raise WorkdirError(f'{path} does not exist.') from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise WorkdirError(f'{path} is corrupt (not valid JSON: {e}); delete it to recompute.') from None
  if required and (not isinstance(value, dict) or any(key not in value for key in required)):
    missing = ', '.join(required) if not isinstance(value, dict) else ', '.join(
        key for key in required if key not in value)
    raise WorkdirError(f'{path} is corrupt (no {missing}); delete it to recompute.')
  return value


def write_jsonl(path: str, rows: list[dict]) -> None:
  atomic_write_text(path, ''.join(dumps(r) + '\n' for r in rows))


def read_jsonl(path: str) -> list[dict]:
  """Reads JSON lines; a corrupt line raises WorkdirError naming the file and line."""
  rows = []
  try:
    with open(path) as f:
      for number, line in enumerate(f, 1):
        if line.strip():
          try:
            row = json.loads(line)
          except json.JSONDecodeError as e:
            raise WorkdirError(f'{path} line {number} is corrupt ({e}); delete the file to recompute.'
                               ) from None
          if not isinstance(row, dict):
            raise WorkdirError(f'{path} line {number} is corrupt (not a JSON object); delete the '
                               'file to recompute.')
          rows.append(row)
  except FileNotFoundError:
    return []
  except UnicodeDecodeError as e:
    raise WorkdirError(f'{path} is corrupt (not UTF-8 text: {e}); delete the file to recompute.'
                       ) from None
  return rows


def append_jsonl(path: str, rows: list[dict]) -> None:
  """Rewrites the file with `rows` appended (atomic: never a half-written line)."""
  write_jsonl(path, read_jsonl(path) + rows)


def ensure_writable(workdir: str) -> str:
  """Creates the workdir if needed; raises WorkdirError if it cannot be written.

  Writability is tried with a real file: permission bits alone do not tell
  (root, read-only mounts, a path under a regular file).
  """
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f'--workdir={workdir} is a file: expected a directory (created if missing).')
  try:
    os.makedirs(workdir, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=workdir, prefix='.write-test.')
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise WorkdirError(f'--workdir={workdir} is not writable ({e.strerror}): expected a directory '
                       'this user can create and write.') from None
  return workdir


@contextlib.contextmanager
def locked(workdir: str, *, wait: bool = False) -> Iterator[None]:
  """Holds an exclusive lock on the workdir; a second process gets WorkdirError (or waits).

  The lock is an flock on `<workdir>/.lock`: the kernel drops it when the process
  dies, even by kill -9, so a crashed run never leaves a stale lock behind.
  """
  if not is_primary():
    yield
    return
  path = os.path.join(ensure_writable(workdir), '.lock')
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 64, 0).decode(errors='replace').strip() or 'another process'
      raise WorkdirError(f'--workdir={workdir} is in use by process {holder}; wait for it or use '
                         'another workdir.') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    yield
  finally:
    os.close(fd)
