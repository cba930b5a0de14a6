"""Convolution gradients in native CPU code (native/conv_gradients.cc), built on first use.

XLA:CPU (jaxlib 0.10) computes a convolution's kernel gradient with Eigen over
x transposed to (C, H, W, N), and a strided layer's input gradient as a
convolution of the zero-dilated output gradient; on a Xeon whose measured
matmul peak is 331-358 GFLOP/s they ran at 104-160 and 84-99 GFLOP/s. The loops in `native/conv_gradients.cc` compute the
same arrays from the NHWC inputs as they lie, as an XLA FFI custom call: the
plain CNN's 28x28 training step took 0.82x the time on a Xeon
(benchmarks/RESULTS.md). `fast_conv` uses them for the gradients of plain
float32 convolutions; the forward convolution, and so every FLOP count of a
forward pass, is unchanged.

The source is compiled once per machine with the C++ compiler (`$CXX`, else
`c++`) and `-march=native` into the cache ($EFFICIENCY_CACHE or
~/.cache/efficiency, under `native/`, named by a hash of the source, the
flags, jaxlib's version and the CPU), then registered with XLA. Where that is
impossible (no compiler, another OS's toolchain, no jaxlib FFI headers) or
`EFFICIENCY_NATIVE_CONV=0` is set, `status()` says why, one warning is
logged, and the gradients stay XLA's own. Nothing is built where JAX's
default backend is a GPU or TPU, and they are not used with more than one
device (see `vector_width`). `disabled()` turns them off while
code is traced (the benchmarks use it to count a training step's FLOPs, which
XLA cannot see inside a custom call).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import hashlib
import importlib.metadata
import logging
import os
import platform
import subprocess
import tempfile
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from efficiency import cpu_info, paths

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'native', 'conv_gradients.cc')
FLAGS = ('-O3', '-march=native', '-std=c++17', '-shared', '-fPIC')
ENV_SWITCH = 'EFFICIENCY_NATIVE_CONV'
_TARGETS = {'efficiency_conv_kernel_gradient': 'KernelGradient',
            'efficiency_conv_input_gradient': 'InputGradient'}
_NHWC = ('NHWC', 'HWIO', 'NHWC')
_enabled = contextvars.ContextVar('native_conv_enabled', default=True)


def _cache_folder() -> str:
  return os.path.join(paths.cache_root(), 'native')


def _library_name(compiler: str) -> str:
  with open(SOURCE, 'rb') as f:
    source = f.read()
  try:
    jaxlib = importlib.metadata.version('jaxlib')
  except importlib.metadata.PackageNotFoundError:
    jaxlib = 'unknown'
  cpu = sorted(cpu_info.this_cpu_signature().items())
  key = repr((source, compiler, FLAGS, jaxlib, platform.machine(), platform.system(), cpu))
  return f'conv_gradients-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so'


def _compile(compiler: str, include: str, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  handle, partial = tempfile.mkstemp(suffix='.so', dir=os.path.dirname(path))
  os.close(handle)
  try:
    command = [compiler, *FLAGS, '-w', '-I', include, SOURCE, '-o', partial]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
      lines = (done.stderr or done.stdout).strip().splitlines()
      raise RuntimeError(f'{compiler} failed: {lines[-1] if lines else "no output"}')
    os.replace(partial, path)   # atomic: a concurrent build or reader sees all or nothing
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def _compiler() -> str:
  return os.environ.get('CXX', 'c++')


def build(folder: str | None = None, compiler: str | None = None) -> str:
  """Path of the compiled library in `folder` (default: the cache), compiling it if missing.

  Raises RuntimeError (the compiler's last line) or OSError where it cannot be built.
  """
  compiler = compiler or _compiler()
  path = os.path.join(folder or _cache_folder(), _library_name(compiler))
  if not os.path.exists(path):
    logging.getLogger(__name__).info('compiling %s (once per machine) into %s', SOURCE, path)
    _compile(compiler, jax.ffi.include_dir(), path)
  return path


def load(folder: str | None = None, compiler: str | None = None) -> tuple[str, ctypes.CDLL]:
  """(path, library) of what `build` makes, loaded; a file in the cache that does not load (cut
  short by a full disk, say) is built again once."""
  path = build(folder, compiler)
  try:
    return path, ctypes.cdll.LoadLibrary(path)
  except OSError as error:
    logging.getLogger(__name__).warning('%s does not load (%s): building it again', path, error)
    os.remove(path)
    return path, ctypes.cdll.LoadLibrary(build(folder, compiler))


# The library this process registered with XLA (a target can be registered once per process).
_registered: dict[str, Any] = {}


@functools.lru_cache(maxsize=1)
def status() -> dict[str, Any]:
  """{'available': bool, 'reason': str, 'vector_width': int | None, 'library': str | None}.

  Builds (once per machine) and registers the custom calls on first call, and logs the outcome.
  """
  if os.environ.get(ENV_SWITCH, '1') == '0':
    return dict(available=False, reason=f'{ENV_SWITCH}=0', vector_width=None, library=None)
  try:
    path, library = load()
    if not _registered:
      for target, symbol in _TARGETS.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                    platform='cpu')
      _registered.update(path=path, width=int(library.efficiency_vector_width()))
  except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as error:
    reason = f'native convolution gradients unavailable, XLA\'s used instead: {error}'
    logging.getLogger(__name__).warning(reason)
    return dict(available=False, reason=reason, vector_width=None, library=None)
  found = dict(available=True, reason=f'built with {_compiler()} {" ".join(FLAGS)}',
               vector_width=_registered['width'], library=_registered['path'])
  logging.getLogger(__name__).info('native convolution gradients: %s', found)
  return found


@contextlib.contextmanager
def disabled() -> Iterator[None]:
  """Code traced inside uses XLA's gradients, not the native ones."""
  token = _enabled.set(False)
  try:
    yield
  finally:
    _enabled.reset(token)


def vector_width() -> int | None:
  """Channels the native gradients work in (C_out for the kernel's, C_in for the input's);
  None where they are unavailable or disabled, where JAX's default backend is not the CPU
  (then nothing is built), and where there is more than one device: XLA's SPMD partitioner
  cannot split a custom call, so under data parallelism it would gather the whole batch's
  activations onto every device and compute the full gradient on each."""
  if not _enabled.get() or jax.default_backend() != 'cpu' or jax.device_count() > 1:
    return None
  found = status()
  return found['vector_width'] if found['available'] else None


def _attributes(strides: tuple[int, int], pads: tuple[tuple[int, int], ...]) -> dict[str, Any]:
  return dict(sh=np.int64(strides[0]), sw=np.int64(strides[1]), pt=np.int64(pads[0][0]),
              pl=np.int64(pads[1][0]))


def kernel_gradient(x, dy, kernel_shape: tuple[int, ...], strides: tuple[int, int],
                    pads: tuple[tuple[int, int], ...]):
  """dL/dkernel (HWIO) of `lax.conv_general_dilated(x, kernel, strides, pads)` (NHWC) given dy."""
  out = jax.ShapeDtypeStruct(tuple(kernel_shape), x.dtype)
  call = jax.ffi.ffi_call('efficiency_conv_kernel_gradient', out, vmap_method='sequential')
  return call(x, dy, **_attributes(strides, pads))


def input_gradient(dy, kernel, x_shape: tuple[int, ...], strides: tuple[int, int],
                   pads: tuple[tuple[int, int], ...]):
  """dL/dx (NHWC) of `lax.conv_general_dilated(x, kernel, strides, pads)` given dy."""
  out = jax.ShapeDtypeStruct(tuple(x_shape), dy.dtype)
  call = jax.ffi.ffi_call('efficiency_conv_input_gradient', out, vmap_method='sequential')
  return call(dy, kernel, **_attributes(strides, pads))


def applies(x: jax.Array, kernel: jax.Array) -> bool:
  """Whether `conv` would use native gradients for this (NHWC) x and (HWIO) kernel."""
  width = vector_width()
  return (width is not None and x.dtype == kernel.dtype == jnp.float32
          and kernel.shape[3] % width == 0)


def _lax_conv(x, kernel, strides, pads, precision):
  return lax.conv_general_dilated(x, kernel, strides, pads, precision=precision,
                                  dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
         pads: tuple[tuple[int, int], ...], precision: Any = None) -> jax.Array:
  """`lax.conv_general_dilated` (NHWC, HWIO, one group); on CPU its gradients are native.

  The kernel gradient always (see `applies`); the input gradient where the
  stride is not 1 and C_in is a multiple of the vector width: at stride 1
  XLA's own ran as fast (benchmarks/RESULTS.md). Other platforms: XLA's.
  """
  return _lax_conv(x, kernel, strides, pads, precision)


def _conv_forward(x, kernel, strides, pads, precision):
  return _lax_conv(x, kernel, strides, pads, precision), (x, kernel)


def _conv_backward(strides, pads, precision, saved, dy):
  x, kernel = saved

  def xla_kernel_gradient(x, dy):
    return jax.vjp(lambda k: _lax_conv(x, k, strides, pads, precision), kernel)[1](dy)[0]

  def xla_input_gradient(dy, kernel):
    return jax.vjp(lambda x_: _lax_conv(x_, kernel, strides, pads, precision), x)[1](dy)[0]

  dkernel = lax.platform_dependent(
      x, dy, cpu=lambda x, dy: kernel_gradient(x, dy, kernel.shape, strides, pads),
      default=xla_kernel_gradient)
  if strides != (1, 1) and x.shape[3] % status()['vector_width'] == 0:
    dx = lax.platform_dependent(
        dy, kernel, cpu=lambda dy, kernel: input_gradient(dy, kernel, x.shape, strides, pads),
        default=xla_input_gradient)
  else:
    dx = xla_input_gradient(dy, kernel)
  return dx, dkernel


conv.defvjp(_conv_forward, _conv_backward)
