"""What tells apart CPUs sold or virtualised under one name, read from /proc/cpuinfo.

Light on purpose (no JAX): `efficiency.cpu_runtime` picks its settings by CPU
before JAX starts, and `efficiency.measure.hardware` records the same fields.
"""

from __future__ import annotations

# Widest first: the SIMD extension XLA's code generator and its kernel libraries target.
_SIMD_LEVELS = (('avx512f', 'avx512'), ('avx2', 'avx2'), ('avx', 'avx'), ('sse4_2', 'sse4'),
                ('sve2', 'sve2'), ('sve', 'sve'), ('asimd', 'neon'))


def cpu_signature(cpuinfo: str) -> dict[str, str]:
  """What tells apart CPUs sold or virtualised under one name, from /proc/cpuinfo's text.

  x86: {'vendor', 'family', 'model', 'stepping', 'simd'}; Arm: {'implementer', 'part', 'simd'};
  from the first processor's block, keys absent from it left out (so {} elsewhere).
  """
  fields: dict[str, str] = {}
  for line in cpuinfo.splitlines():
    if not line.strip():
      if fields:
        break
      continue
    key, _, value = line.partition(':')
    fields.setdefault(key.strip(), value.strip())
  names = {'vendor': 'vendor_id', 'family': 'cpu family', 'model': 'model',
           'stepping': 'stepping', 'implementer': 'CPU implementer', 'part': 'CPU part'}
  signature = {name: fields[key] for name, key in names.items() if fields.get(key)}
  flags = set((fields.get('flags') or fields.get('Features') or '').split())
  simd = next((level for flag, level in _SIMD_LEVELS if flag in flags), None)
  if simd:
    signature['simd'] = simd
  return signature


def this_cpu_signature() -> dict[str, str]:
  """`cpu_signature` of this machine; {} where /proc/cpuinfo cannot be read."""
  try:
    with open('/proc/cpuinfo') as f:
      return cpu_signature(f.read())
  except OSError:
    return {}
