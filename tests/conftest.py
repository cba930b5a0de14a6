"""Test set-up: CPU only, fast compiles, Ctrl-C delivered, a private TFDS data directory per session."""

import os
import signal
import sys

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import pytest  # noqa: E402

# Compiled-code speed does not matter in tests; compile time does.
jax.config.update('jax_disable_most_optimizations', True)


@pytest.fixture(scope='session', autouse=True)
def ctrl_c_delivered():
  """Python's Ctrl-C handler in the test process, so the processes it starts get SIGINT at its
  default too. A suite started in the background by a non-interactive shell inherits SIGINT
  ignored, and an ignored SIGINT stays ignored in every child: the tests that interrupt a run
  (in-process or through an entry point) would see nothing happen."""
  inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
  yield
  signal.signal(signal.SIGINT, signal.SIG_DFL if inherited is None else inherited)


@pytest.fixture(scope='session')
def tfds_dir(tmp_path_factory):
  """A TFDS data directory shared by the tests of one session (digits prepared once)."""
  return str(tmp_path_factory.mktemp('tfds'))
