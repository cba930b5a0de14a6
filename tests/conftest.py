"""Test set-up: CPU only, fast compiles, a private TFDS data directory per session."""

import os
import sys

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import pytest  # noqa: E402

# Compiled-code speed does not matter in tests; compile time does.
jax.config.update('jax_disable_most_optimizations', True)


@pytest.fixture(scope='session')
def tfds_dir(tmp_path_factory):
  """A TFDS data directory shared by the tests of one session (digits prepared once)."""
  return str(tmp_path_factory.mktemp('tfds'))
