"""Errors a user can fix: each is reported as one line naming the problem."""


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
