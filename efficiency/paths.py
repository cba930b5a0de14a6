"""Where the toolkit keeps what it builds for this machine, outside any workdir."""

import os


def cache_root() -> str:
  """$EFFICIENCY_CACHE, else ~/.cache/efficiency: compiled XLA programs (`jax/`) and the
  native convolution gradients (`native/`)."""
  return os.environ.get('EFFICIENCY_CACHE', os.path.expanduser('~/.cache/efficiency'))
