"""XLA's own cost analysis of a jitted function, with its blind spots stated.

`xla_cost(fn, *args)` lowers and compiles `fn` once and reports:

* `flops`, `transcendentals`, `bytes_accessed` of the compiled (optimised)
  program, and the same three of the lowered (unoptimised) program
  (`*_lowered`). The lowered program is unfused, so its bytes count every op's
  operands and outputs; on XLA:CPU the compiled `bytes accessed` leaves
  convolution traffic out, so `bytes_for_intensity` takes the lowered figure and
  `bytes_source` says so.
* `status` ('ok', 'partial', 'unavailable') and `notes`: a backend that returns
  no analysis, or -1 for a count (custom calls such as cuBLAS/cuDNN), gives None
  plus a note instead of a wrong number; custom calls and while loops in the
  compiled program (work not counted, loop bodies counted once) make the status
  'partial'.
* `memory`: `compiled.memory_analysis()` sizes where the backend provides them.
* `lower_s` and `compile_s`: wall time of lowering and of compilation.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

import jax

_KEYS = {'flops': 'flops', 'transcendentals': 'transcendentals', 'bytes accessed': 'bytes_accessed'}
_MEMORY_FIELDS = (
    'argument_size_in_bytes', 'output_size_in_bytes', 'alias_size_in_bytes',
    'temp_size_in_bytes', 'generated_code_size_in_bytes', 'peak_memory_in_bytes',
    'host_argument_size_in_bytes', 'host_output_size_in_bytes', 'host_temp_size_in_bytes',
)
_CUSTOM_CALL = re.compile(r'custom_call_target="([^"]+)"')
_WHILE = re.compile(r'\swhile\(')


def normalize_cost_analysis(raw: Any, label: str = 'cost_analysis') -> dict[str, Any]:
  """{flops, transcendentals, bytes_accessed, status, notes} from any form JAX returns.

  `raw` may be a dict, a list/tuple of dicts (older JAX: one per program; the
  first is used), or None. XLA leaves zero counts out of the dict, so a missing
  key is 0; a negative count (-1: unknown) becomes None with a note.
  """
  notes: list[str] = []
  if isinstance(raw, (list, tuple)):
    entries = [entry for entry in raw if entry]
    if len(entries) > 1:
      notes.append(f'{label} returned {len(entries)} programs; the first is used.')
    raw = entries[0] if entries else None
  out: dict[str, Any] = {name: None for name in _KEYS.values()}
  if raw is None or not hasattr(raw, 'get'):
    notes.append(f'{label} is unavailable on this backend (returned {type(raw).__name__}).')
    return dict(out, status='unavailable', notes=notes)
  if not raw:
    notes.append(f'{label} returned an empty analysis on this backend.')
    return dict(out, status='unavailable', notes=notes)
  for key, name in _KEYS.items():
    value = raw.get(key, 0.0)  # XLA leaves out properties that are zero
    if value is None:
      notes.append(f'{label} has no "{key}" count.')
    elif value < 0:
      notes.append(f'{label} reported "{key}"={value:g} (unknown, e.g. custom calls); recorded None.')
    else:
      out[name] = float(value)
  if out['flops'] == 0:
    notes.append(f'{label} reported 0 FLOPs: either the function does no arithmetic or the '
                 'backend could not count it (custom calls report 0 on some backends).')
  status = 'ok' if out['flops'] is not None and out['bytes_accessed'] is not None else 'partial'
  if all(v is None for v in out.values()):
    status = 'unavailable'
  return dict(out, status=status, notes=notes)


def memory_record(compiled: Any) -> dict[str, int]:
  """The sizes `compiled.memory_analysis()` provides (raises if the backend has none)."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    raise NotImplementedError('memory_analysis() returned None on this backend')
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return {field: int(getattr(analysis, field)) for field in _MEMORY_FIELDS
          if getattr(analysis, field, None) is not None}


def program_features(hlo_text: str) -> dict[str, Any]:
  """Custom-call targets and while loops in an HLO module's text."""
  return {'custom_calls': sorted(set(_CUSTOM_CALL.findall(hlo_text))),
          'while_loops': len(_WHILE.findall(hlo_text))}


def xla_cost(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
  """XLA's cost and memory analysis of `jax.jit(fn)(*args)`; see the module docstring."""
  start = time.perf_counter()
  lowered = jax.jit(fn).lower(*args)
  lower_s = time.perf_counter() - start
  start = time.perf_counter()
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start

  record: dict[str, Any] = {'lower_s': lower_s, 'compile_s': compile_s}
  compiled_cost = normalize_cost_analysis(compiled.cost_analysis(), 'compiled cost_analysis')
  lowered_cost = normalize_cost_analysis(lowered.cost_analysis(), 'lowered cost_analysis')
  record.update({k: compiled_cost[k] for k in _KEYS.values()})
  record.update({f'{k}_lowered': lowered_cost[k] for k in _KEYS.values()})
  notes = compiled_cost['notes'] + lowered_cost['notes']
  status = compiled_cost['status']

  features = program_features(compiled.as_text() or '')
  record.update(features)
  if features['custom_calls']:
    status = 'partial' if status == 'ok' else status
    notes.append('the compiled program has custom calls (' + ', '.join(features['custom_calls'])
                 + '); XLA does not count their work, so its FLOPs may be too low.')
  if features['while_loops']:
    status = 'partial' if status == 'ok' else status
    notes.append(f"{features['while_loops']} while loop(s) in the compiled program: XLA counts "
                 'each body once, whatever the trip count.')

  record['bytes_for_intensity'] = record['bytes_accessed_lowered']
  record['bytes_source'] = 'xla_lowered' if record['bytes_for_intensity'] is not None else None
  record['memory'] = None
  try:
    record['memory'] = memory_record(compiled)
  except Exception as error:  # noqa: BLE001 - recorded, not swallowed
    record['memory_error'] = f'{type(error).__name__}: {error}'
  record['status'] = status
  record['notes'] = notes
  return record
