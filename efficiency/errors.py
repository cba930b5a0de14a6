"""Errors a user can fix: each is reported as one line naming the problem.

`describe(error)` is the one line for any error, these or others.
"""


class EfficiencyError(Exception):
  """Base class: the message is a complete sentence shown to the user as is."""


class ConfigError(EfficiencyError):
  """A config field has a value that is not allowed."""


class DataError(EfficiencyError):
  """A dataset cannot be found, prepared or read."""


class CheckpointError(EfficiencyError):
  """A checkpoint is missing, truncated or does not match the model."""


class WorkdirError(EfficiencyError):
  """A workdir is missing, unwritable, locked or holds a corrupt file."""


class DivergenceError(EfficiencyError):
  """Training produced a NaN or infinite loss."""


def first_line(text: str) -> str:
  """The first non-blank line of `text`, stripped ('' if there is none)."""
  lines = [line.strip() for line in str(text).splitlines() if line.strip()]
  return lines[0] if lines else ''


def describe(error: BaseException) -> str:
  """One line: an EfficiencyError's message (a complete sentence), else 'TypeName: first line'."""
  message = first_line(str(error))
  if isinstance(error, EfficiencyError):
    return message
  return f'{type(error).__name__}: {message}' if message else type(error).__name__
