"""Process settings that make XLA:CPU train and measure faster; apply before JAX starts its backend.

`configure()` does four things, each measured on the benchmark models
(benchmarks/RESULTS.md) and each process-wide:

* Keep freed host memory. XLA:CPU allocates each call's scratch ("temp")
  buffer with malloc and frees it afterwards. Above glibc's mmap threshold
  malloc maps fresh pages, so every call faults them in again: a training step
  of the 28x28 CNN (200 MB of scratch) took ~50,000 page faults and ~110 ms of
  system time, a third of its CPU time. With no mmap and no trimming (glibc
  `mallopt`), the pages are reused from the second call on. Where calls run
  on JAX's worker threads (asynchronous dispatch), malloc is also held to one
  arena: a worker thread's own arena (a heap of at most 64 MiB) still faults,
  20,600 times a step for that CNN. With synchronous dispatch (below) the
  scratch comes from the calling thread's arena and the threads keep their
  own: one shared arena made them wait on its lock, 5-13% of every
  benchmark model's step or forward (benchmarks/RESULTS.md, Intel). The
  price: the process keeps its peak heap (the largest step so far) until it
  exits.
* Run ungrouped convolutions through Eigen instead of YNNPACK
  (`--xla_cpu_experimental_ynn_fusion_type=-individual_convolution` in
  XLA_FLAGS). In jaxlib 0.10 the YNNPACK convolutions run on one thread while
  Eigen's use every core: the CNN's training step took ~40% less time. Only
  set for the jaxlib versions it was measured on (an unknown XLA flag is a
  fatal error) and never over a user's own setting of that flag.
* On Intel CPUs with AVX-512, let XLA's code generator use 512-bit vectors
  (`--xla_cpu_prefer_vector_width=512`; its default is 256): on a Xeon with
  AVX-512 the CNN's 28x28 training step took 0.95x the time, MobileNet's
  0.96x and its batch-64 forward 0.94x, the rest unchanged. Only set where it
  was measured (Intel, AVX-512, the jaxlib versions below) and never over a
  user's own setting.
* Run CPU computations in the calling thread (JAX's
  `jax_cpu_enable_async_dispatch=False`) instead of handing each call to a
  thread pool and waiting for it: batch-1 latency 17-60% lower (0.13 ->
  0.06 ms for the 8x8 CNN), batch-64 inference and training steps unchanged,
  the base config's training no slower (the loop gains little from running
  ahead of the device on a CPU). Left alone when JAX_CPU_ENABLE_ASYNC_DISPATCH
  is set. Only the CPU backend is affected.

All four must happen before the first JAX computation (when JAX creates its
backend and threads); later calls change nothing and say so. Idempotent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.metadata
import os
import sys
from typing import Any

from efficiency import cpu_info

CONV_FLAG_NAME = 'xla_cpu_experimental_ynn_fusion_type'
CONV_FLAG = f'--{CONV_FLAG_NAME}=-individual_convolution'
# jaxlib versions on which the XLA flags set here exist and were measured to help.
MEASURED_JAXLIB = ('0.10.',)
VECTOR_FLAG_NAME = 'xla_cpu_prefer_vector_width'
VECTOR_FLAG = f'--{VECTOR_FLAG_NAME}=512'
# (vendor, widest SIMD extension) of the CPUs VECTOR_FLAG was measured to help on.
VECTOR_FLAG_CPUS = (('GenuineIntel', 'avx512'),)

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes


def _jax_backend_started() -> bool:
  if 'jax' not in sys.modules:
    return False
  from jax._src import xla_bridge  # only looked at if JAX is already imported
  return bool(getattr(xla_bridge, 'backends_are_initialized', lambda: False)())


def keep_freed_memory(one_arena: bool = False) -> dict[str, Any]:
  """The glibc malloc settings above, one arena only if `one_arena`; {'applied': bool, 'reason': str}."""
  if _jax_backend_started():
    return {'applied': False, 'reason': "JAX's backend already started: its worker threads keep "
                                        'their own arenas, so scratch buffers would still fault'}
  try:
    mallopt = ctypes.CDLL(ctypes.util.find_library('c')).mallopt
  except (OSError, AttributeError, TypeError) as error:
    return {'applied': False, 'reason': f'no glibc mallopt ({type(error).__name__}: {error})'}
  settings = {'M_MMAP_MAX': (_M_MMAP_MAX, 0), 'M_TRIM_THRESHOLD': (_M_TRIM_THRESHOLD, _NEVER_TRIM)}
  if one_arena:
    settings['M_ARENA_MAX'] = (_M_ARENA_MAX, 1)
  refused = [key for key, (param, value) in settings.items() if mallopt(param, value) != 1]
  if refused:
    return {'applied': False, 'reason': 'mallopt refused ' + ', '.join(refused)}
  arenas = 'one arena' if one_arena else 'per-thread arenas'
  return {'applied': True, 'reason': f'glibc malloc: no mmap, no trimming, {arenas}'}


def _jaxlib_version() -> str:
  try:
    return importlib.metadata.version('jaxlib')
  except importlib.metadata.PackageNotFoundError:
    return 'unknown'


def _add_xla_flag(name: str, flag: str) -> dict[str, Any]:
  """Appends `flag` (which sets `name`) to XLA_FLAGS unless it is there, the user set `name`, this
  jaxlib was not measured or JAX already read XLA_FLAGS; {'applied': bool, 'reason': str}."""
  flags = os.environ.get('XLA_FLAGS', '')
  if flag in flags.split():
    return {'applied': True, 'reason': f'XLA_FLAGS already holds {flag}'}
  if name in flags:
    return {'applied': False, 'reason': f'XLA_FLAGS sets {name} already: left as given'}
  version = _jaxlib_version()
  if not version.startswith(MEASURED_JAXLIB):
    return {'applied': False, 'reason': f'jaxlib {version}: {flag} not measured there'}
  if _jax_backend_started():
    return {'applied': False, 'reason': "JAX's backend already started: XLA_FLAGS was read"}
  os.environ['XLA_FLAGS'] = f'{flags} {flag}'.strip()
  return {'applied': True, 'reason': f'XLA_FLAGS += {flag}'}


def eigen_convolutions() -> dict[str, Any]:
  """Appends CONV_FLAG to XLA_FLAGS (see the module docstring); {'applied': bool, 'reason': str}."""
  return _add_xla_flag(CONV_FLAG_NAME, CONV_FLAG)


def _this_cpu() -> tuple[str | None, str | None]:
  signature = cpu_info.this_cpu_signature()
  return signature.get('vendor'), signature.get('simd')


def wide_vectors(cpu: tuple[str | None, str | None] | None = None) -> dict[str, Any]:
  """Appends VECTOR_FLAG to XLA_FLAGS on the CPUs of VECTOR_FLAG_CPUS; `cpu`: (vendor, simd),
  default this machine's. {'applied': bool, 'reason': str}."""
  cpu = _this_cpu() if cpu is None else cpu
  if cpu not in VECTOR_FLAG_CPUS:
    measured = ', '.join(' '.join(entry) for entry in VECTOR_FLAG_CPUS)
    return {'applied': False, 'reason': f'{VECTOR_FLAG} measured only on {measured}; this CPU: '
                                        + ' '.join(str(part) for part in cpu)}
  return _add_xla_flag(VECTOR_FLAG_NAME, VECTOR_FLAG)


def synchronous_dispatch() -> dict[str, Any]:
  """Sets jax_cpu_enable_async_dispatch=False (see the module docstring); {'applied', 'reason'}."""
  if 'JAX_CPU_ENABLE_ASYNC_DISPATCH' in os.environ:
    return {'applied': False, 'reason': 'JAX_CPU_ENABLE_ASYNC_DISPATCH is set: left as given'}
  if _jax_backend_started():
    return {'applied': False, 'reason': "JAX's backend already started: its CPU client is made"}
  import jax  # importing JAX does not start its backend
  jax.config.update('jax_cpu_enable_async_dispatch', False)
  return {'applied': True, 'reason': 'jax_cpu_enable_async_dispatch=False'}


def _asynchronous_dispatch() -> bool:
  import jax  # importing JAX does not start its backend
  return bool(jax.config.read('jax_cpu_enable_async_dispatch'))


@functools.lru_cache(maxsize=1)
def configure() -> dict[str, dict[str, Any]]:
  """All settings, once per process: {'keep_freed_memory': {...}, 'eigen_convolutions': {...},
  'wide_vectors': {...}, 'synchronous_dispatch': {...}}."""
  dispatch = synchronous_dispatch()
  return {'keep_freed_memory': keep_freed_memory(one_arena=_asynchronous_dispatch()),
          'eigen_convolutions': eigen_convolutions(), 'wide_vectors': wide_vectors(),
          'synchronous_dispatch': dispatch}
