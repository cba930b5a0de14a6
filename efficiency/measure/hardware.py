"""What machine a measurement ran on: CPU, caches, memory, OS, library versions, devices.

`hardware_report()` is computed once per process and cached (a copy is
returned). `hardware_id(report)` is a short, stable id used to group results
by machine: 'cpu-<cpu model>-f<family>m<model>-<simd>-<n>c' (x86; Arm has
'p<part>' in place of the family and model; n = cores this process may run
on) or '<platform>-<device kind>x<n>' for accelerators. The family, model and
widest SIMD extension are there because hypervisors often give different CPUs
one name: of two 2-core 'AMD EPYC' guests, one Zen 3 (AVX2) and one Zen 4
(AVX-512), the first took 1.2-2.2x as long for the same training steps, ours
and PyTorch's (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Any

import jax
import psutil

from efficiency.cpu_info import this_cpu_signature

_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'numpy')
_THREAD_ENV = ('XLA_FLAGS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
               'TF_NUM_INTEROP_THREADS', 'TF_NUM_INTRAOP_THREADS', 'JAX_PLATFORMS',
               'XLA_PYTHON_CLIENT_PREALLOCATE', 'XLA_PYTHON_CLIENT_MEM_FRACTION')


def _cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        key, _, value = line.partition(':')
        if key.strip() in ('model name', 'Model', 'Hardware', 'cpu model') and value.strip():
          return value.strip()
  except OSError:
    pass
  if platform.system() == 'Darwin' and shutil.which('sysctl'):
    result = subprocess.run(['sysctl', '-n', 'machdep.cpu.brand_string'],
                            capture_output=True, text=True, timeout=5, check=False)
    if result.stdout.strip():
      return result.stdout.strip()
  return platform.processor() or platform.machine() or 'unknown'


def _cpu_caches() -> dict[str, str]:
  """{'L1d': '32K', 'L2': '1024K', ...} per core from sysfs, else lscpu's totals."""
  caches = {}
  base = '/sys/devices/system/cpu/cpu0/cache'
  if os.path.isdir(base):
    for index in sorted(os.listdir(base)):
      try:
        with open(f'{base}/{index}/level') as f:
          level = f.read().strip()
        with open(f'{base}/{index}/type') as f:
          kind = f.read().strip()
        with open(f'{base}/{index}/size') as f:
          size = f.read().strip()
      except OSError:
        continue
      suffix = {'Data': 'd', 'Instruction': 'i'}.get(kind, '')
      caches[f'L{level}{suffix}'] = size
  if not caches and shutil.which('lscpu'):
    result = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=5, check=False)
    for line in result.stdout.splitlines():
      match = re.match(r'\s*(L\d\w?) cache:\s*(.+)', line)
      if match:
        caches[match.group(1)] = match.group(2).strip()
  return caches


def _version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def _device_record(device: Any) -> dict[str, Any]:
  record = {'id': device.id, 'platform': device.platform, 'kind': device.device_kind,
            'process_index': device.process_index, 'memory_bytes': None}
  try:
    stats = device.memory_stats()
  except Exception as error:  # noqa: BLE001 - recorded, not swallowed
    record['memory_error'] = f'{type(error).__name__}: {error}'
    stats = None
  if stats:
    record['memory_bytes'] = stats.get('bytes_limit')
  return record


@functools.lru_cache(maxsize=1)
def _report() -> dict[str, Any]:
  affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None
  devices = jax.devices()
  return {
      'cpu_model': _cpu_model(),
      'cpu_signature': this_cpu_signature(),
      'cpu_physical_cores': psutil.cpu_count(logical=False),
      'cpu_logical_cores': psutil.cpu_count(logical=True),
      'cpu_affinity': affinity,
      'usable_cores': len(affinity) if affinity is not None else os.cpu_count(),
      'cpu_caches': _cpu_caches(),
      'ram_bytes': int(psutil.virtual_memory().total),
      'os': platform.system(),
      'os_release': platform.release(),
      'platform': platform.platform(),
      'machine': platform.machine(),
      'python': sys.version.split()[0],
      'versions': {name: _version(name) for name in _PACKAGES},
      'backend': jax.default_backend(),
      'process_count': jax.process_count(),
      'device_count': jax.device_count(),
      'local_device_count': jax.local_device_count(),
      'devices': [_device_record(d) for d in devices],
      'env': {name: os.environ.get(name) for name in _THREAD_ENV},
  }


def hardware_report() -> dict[str, Any]:
  """The machine, OS, library versions, JAX backend and devices (JSON-serialisable)."""
  return copy.deepcopy(_report())


def _slug(text: str) -> str:
  text = re.sub(r'\((r|tm|c)\)', '', text.lower())
  text = re.sub(r'\b(cpu|processor|with|radeon graphics)\b|@.*$', ' ', text)
  return re.sub(r'[^a-z0-9]+', '-', text).strip('-') or 'unknown'


def hardware_id(report: dict[str, Any] | None = None) -> str:
  """'cpu-amd-epyc-f25m1-avx2-2c' or 'gpu-nvidia-h200x1': a short id to group results by machine.

  A report without 'cpu_signature' (written before it existed) gives 'cpu-<model>-<n>c'.
  """
  report = hardware_report() if report is None else report
  backend = report.get('backend', 'cpu')
  if backend == 'cpu':
    signature = report.get('cpu_signature') or {}
    parts = [_slug(report.get('cpu_model', 'unknown'))]
    if signature.get('family') and signature.get('model'):
      parts.append(f"f{signature['family']}m{signature['model']}")
    elif signature.get('part'):
      parts.append('p' + _slug(signature['part']).removeprefix('0x'))
    if signature.get('simd'):
      parts.append(signature['simd'])
    return f"cpu-{'-'.join(parts)}-{report.get('usable_cores')}c"
  kinds = [d['kind'] for d in report.get('devices', []) if d.get('platform') == backend]
  kind = kinds[0] if kinds else backend
  return f'{backend}-{_slug(kind)}x{len(kinds) or report.get("device_count")}'
