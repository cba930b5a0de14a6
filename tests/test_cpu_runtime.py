"""cpu_runtime.configure: scratch buffers stop page-faulting, the conv flag is set, late calls say so."""

import json
import os
import subprocess
import sys

import pytest

from efficiency import cpu_runtime

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A jitted function with a 64 MiB scratch buffer (the first matmul's output): the median page faults
# of 10 calls after warm-up (the heap may still grow now and then: the median ignores that); then
# configure() again, now too late.
_SCRIPT = r'''
import json, os, resource, sys
sys.path.insert(0, {root!r})
from efficiency import cpu_runtime
state = cpu_runtime.configure() if {configure} else None
import jax, jax.numpy as jnp
fn = jax.jit(lambda x, w: jnp.tanh(x @ w) @ w.T)
x, w = jnp.ones((4096, 64)), jnp.ones((64, 4096))
for _ in range(8):
  jax.block_until_ready(fn(x, w))
counts = []
for _ in range(10):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  jax.block_until_ready(fn(x, w))
  counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
faults = sorted(counts)[len(counts) // 2]
late = dict(memory=cpu_runtime.keep_freed_memory(), flag=cpu_runtime.eigen_convolutions(),
            dispatch=cpu_runtime.synchronous_dispatch())
asynchronous = jax.config.read('jax_cpu_enable_async_dispatch')
print(json.dumps(dict(state=state, faults=faults, late=late, flags=os.environ.get('XLA_FLAGS'),
                      asynchronous=asynchronous)))
'''


def _run(configure: bool, xla_flags: str = '', async_dispatch: str | None = None) -> dict:
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=xla_flags)
  env.pop('JAX_CPU_ENABLE_ASYNC_DISPATCH', None)
  if async_dispatch is not None:
    env['JAX_CPU_ENABLE_ASYNC_DISPATCH'] = async_dispatch
  out = subprocess.run([sys.executable, '-c', _SCRIPT.format(root=_ROOT, configure=configure)],
                       capture_output=True, text=True, env=env, timeout=120, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt is Linux-only')
def test_configure_stops_scratch_page_faults_and_sets_the_conv_flag():
  tuned, default = _run(configure=True), _run(configure=False)
  assert tuned['state']['keep_freed_memory']['applied'], tuned['state']
  assert tuned['state']['eigen_convolutions']['applied'], tuned['state']
  wide = [cpu_runtime.VECTOR_FLAG] if tuned['state']['wide_vectors']['applied'] else []
  assert tuned['flags'].split() == [cpu_runtime.CONV_FLAG, *wide]
  assert tuned['state']['synchronous_dispatch']['applied'], tuned['state']
  assert tuned['asynchronous'] is False and default['asynchronous'] is True
  assert 'per-thread arenas' in tuned['state']['keep_freed_memory']['reason']
  scratch_pages = 4096 * 4096 * 4 // 4096
  assert default['faults'] > scratch_pages / 2     # glibc maps the scratch buffer afresh
  assert tuned['faults'] < scratch_pages / 20
  for late in default['late'].values():
    assert not late['applied'] and 'already started' in late['reason']


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt is Linux-only')
def test_with_asynchronous_dispatch_one_arena_keeps_the_worker_threads_scratch():
  tuned = _run(configure=True, async_dispatch='true')
  assert tuned['asynchronous'] is True
  assert not tuned['state']['synchronous_dispatch']['applied']
  assert 'one arena' in tuned['state']['keep_freed_memory']['reason'], tuned['state']
  assert tuned['faults'] < 4096 * 4096 * 4 // 4096 / 20


def test_a_users_own_setting_of_the_flag_is_left_alone(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', f'--{cpu_runtime.CONV_FLAG_NAME}=')
  state = cpu_runtime.eigen_convolutions()
  assert not state['applied'] and 'left as given' in state['reason']
  assert os.environ['XLA_FLAGS'] == f'--{cpu_runtime.CONV_FLAG_NAME}='
  monkeypatch.setenv('XLA_FLAGS', f'--xla_cpu_enable_fast_math=false {cpu_runtime.CONV_FLAG}')
  assert cpu_runtime.eigen_convolutions()['applied']
  assert os.environ['XLA_FLAGS'].count(cpu_runtime.CONV_FLAG) == 1


def test_wide_vectors_only_on_the_cpus_they_were_measured_on(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '')
  for cpu in (('AuthenticAMD', 'avx512'), ('GenuineIntel', 'avx2'), (None, None)):
    state = cpu_runtime.wide_vectors(cpu)
    assert not state['applied'] and 'measured only on GenuineIntel avx512' in state['reason']
    assert os.environ['XLA_FLAGS'] == ''
  intel = cpu_runtime.VECTOR_FLAG_CPUS[0]
  monkeypatch.setenv('XLA_FLAGS', f'--{cpu_runtime.VECTOR_FLAG_NAME}=256')
  state = cpu_runtime.wide_vectors(intel)
  assert not state['applied'] and 'left as given' in state['reason']
  monkeypatch.setenv('XLA_FLAGS', cpu_runtime.VECTOR_FLAG)
  assert cpu_runtime.wide_vectors(intel)['applied']
  assert os.environ['XLA_FLAGS'] == cpu_runtime.VECTOR_FLAG


def test_a_users_own_dispatch_setting_is_left_alone(monkeypatch):
  monkeypatch.setenv('JAX_CPU_ENABLE_ASYNC_DISPATCH', 'true')
  state = cpu_runtime.synchronous_dispatch()
  assert not state['applied'] and 'left as given' in state['reason']
