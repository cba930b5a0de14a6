"""An independent FLOP/MAC/byte count from the jaxpr, with a per-scope breakdown.

`jaxpr_cost(fn, *args)` traces `fn` with `jax.make_jaxpr` and walks every
equation, entering nested jaxprs: jit/pjit, closed_call, custom_jvp/custom_vjp
(the primal only), remat, shard_map; `scan` bodies count `length` times; `while`
bodies and conditions count once (the trip count is not known at trace time;
XLA does the same) and are flagged; `cond` counts its most expensive branch.
Per-equation rules and conventions are in `op_costs`.

Each equation's cost goes to exactly one row, chosen from the `jax.named_scope`s
around it (`eqn.source_info.name_stack`), so the rows sum exactly to the total.
Equations outside every scope go to the '(other)' row.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jax

from efficiency.measure import op_costs

CONVENTION = '1 multiply-add = 2 FLOPs; MACs = multiply-adds'
CONV_CONVENTION = ('flops/macs count every convolution tap, padding included (as fvcore, ptflops, '
                   'thop and most papers); *_excluding_padding count only taps on real input, as XLA does')
BYTES_CONVENTION = ('each equation reads each operand once and writes each output once '
                    '(no fusion, no caching): an upper bound on memory traffic')
OTHER_ROW = '(other)'
_PUBLIC_NAMES = {
    'flops': 'flops', 'macs': 'macs', 'flops_valid': 'flops_excluding_padding',
    'macs_valid': 'macs_excluding_padding', 'transcendentals': 'transcendentals', 'bytes': 'bytes',
}
_TRANSFORM = re.compile(r'^[\w.-]+\((.*)\)$')

RowKey = Callable[[tuple[str, ...]], 'str | None']


def scope_names(name_stack: Any) -> tuple[str, ...]:
  """The `jax.named_scope` names in a name stack, transform markers (jvp, vmap, ...) dropped."""
  stack = getattr(name_stack, 'stack', None)
  if stack is not None:
    return tuple(entry.name for entry in stack if type(entry).__name__ == 'Scope')
  names = []
  for part in str(name_stack).split('/'):
    while (match := _TRANSFORM.match(part)) is not None:
      part = match.group(1)
    if part:
      names.append(part)
  return tuple(names)


def joined_scopes(scopes: tuple[str, ...]) -> str | None:
  """Default row key: the full scope path 'a/b/c', or None outside every scope."""
  return '/'.join(scopes) if scopes else None


def public_cost(cost: op_costs.Cost) -> dict[str, int]:
  """A Cost under the names used in records (flops, macs, flops_excluding_padding, ...)."""
  return {_PUBLIC_NAMES[k]: v for k, v in cost.as_dict().items()}


class _Tally:
  """Costs by row plus what the walk could not count exactly."""

  def __init__(self, row_key: RowKey):
    self.row_key = row_key
    self.rows: dict[str, op_costs.Cost] = {}
    self.uncounted: dict[str, int] = {}
    self.while_loops = 0
    self.scans = 0
    self.conds = 0

  def add(self, scopes: tuple[str, ...], cost: op_costs.Cost, times: int) -> None:
    key = self.row_key(scopes) or OTHER_ROW
    self.rows.setdefault(key, op_costs.Cost()).add(cost, times)

  def merge(self, other: _Tally) -> None:
    for key, cost in other.rows.items():
      self.rows.setdefault(key, op_costs.Cost()).add(cost)
    for name, n in other.uncounted.items():
      self.uncounted[name] = self.uncounted.get(name, 0) + n
    self.while_loops += other.while_loops
    self.scans += other.scans
    self.conds += other.conds

  def total(self) -> op_costs.Cost:
    total = op_costs.Cost()
    for cost in self.rows.values():
      total.add(cost)
    return total


def _open(jaxpr: Any):
  """The Jaxpr inside a ClosedJaxpr (or the Jaxpr itself)."""
  return getattr(jaxpr, 'jaxpr', jaxpr)


def _is_jaxpr(value: Any) -> bool:
  return isinstance(value, (jax.extend.core.Jaxpr, jax.extend.core.ClosedJaxpr))


def _sub_jaxprs(eqn) -> list[tuple[Any, int]]:
  """(jaxpr, times it runs) for each sub-jaxpr an equation executes; [] for a leaf op."""
  name, params = eqn.primitive.name, eqn.params
  if name == 'scan':
    return [(_open(params['jaxpr']), int(params['length']))]
  if name == 'while':
    return [(_open(params['cond_jaxpr']), 1), (_open(params['body_jaxpr']), 1)]
  if name.startswith('custom_jvp_call') or name.startswith('custom_vjp_call'):
    primal = params.get('call_jaxpr', params.get('fun_jaxpr'))
    return [(_open(primal), 1)] if primal is not None else []
  found = []
  for value in params.values():
    for item in (value if isinstance(value, (list, tuple)) else (value,)):
      if _is_jaxpr(item):
        found.append((_open(item), 1))
  return found


def _walk(jaxpr, prefix: tuple[str, ...], times: int, tally: _Tally) -> None:
  for eqn in jaxpr.eqns:
    scopes = prefix + scope_names(eqn.source_info.name_stack)
    name = eqn.primitive.name
    if name == 'cond':
      tally.conds += 1
      branches = []
      for branch in eqn.params['branches']:
        branch_tally = _Tally(tally.row_key)
        _walk(_open(branch), scopes, times, branch_tally)
        branches.append(branch_tally)
      tally.merge(max(branches, key=lambda t: (t.total().flops, t.total().transcendentals)))
      continue
    subs = _sub_jaxprs(eqn)
    if subs:
      if name == 'while':
        tally.while_loops += 1
      elif name == 'scan':
        tally.scans += 1
      for sub, sub_times in subs:
        _walk(sub, scopes, times * sub_times, tally)
      continue
    cost = op_costs.equation_cost(eqn)
    if cost is None:
      tally.uncounted[name] = tally.uncounted.get(name, 0) + times
      cost = op_costs.Cost(bytes=op_costs.equation_bytes(eqn))
    tally.add(scopes, cost, times)


def count_jaxpr(closed_jaxpr: Any, *, row_key: RowKey = joined_scopes,
                per_layer: bool = True) -> dict[str, Any]:
  """Counts an already-traced (Closed)Jaxpr; see `jaxpr_cost` for the record."""
  tally = _Tally(row_key)
  _walk(_open(closed_jaxpr), (), 1, tally)
  total = tally.total()
  notes = []
  if tally.while_loops:
    notes.append(f'{tally.while_loops} while loop(s): body and condition counted once each '
                 '(trip count unknown at trace time), so the totals are a lower bound.')
  if tally.uncounted:
    notes.append('primitives with no cost rule, counted as 0 FLOPs: '
                 + ', '.join(f'{k} x{v}' for k, v in sorted(tally.uncounted.items())) + '.')
  record: dict[str, Any] = public_cost(total)
  record.update(
      convention=CONVENTION, conv_convention=CONV_CONVENTION, bytes_convention=BYTES_CONVENTION,
      while_loops=tally.while_loops, scans=tally.scans, conds=tally.conds,
      uncounted_primitives=dict(sorted(tally.uncounted.items())), notes=notes,
      per_layer=None)
  if per_layer:
    record['per_layer'] = [dict(name=key, **public_cost(cost)) for key, cost in tally.rows.items()]
  return record


def jaxpr_cost(fn: Callable[..., Any], *args: Any, row_key: RowKey = joined_scopes,
               per_layer: bool = True) -> dict[str, Any]:
  """FLOPs, MACs, transcendentals and bytes of `fn(*args)` from its jaxpr.

  Returns flops, macs, flops_excluding_padding, macs_excluding_padding,
  transcendentals, bytes (all exact integers), the conventions as text, loop
  flags, `uncounted_primitives`, `notes` and `per_layer`: a list of rows
  {name, flops, macs, ...} that sum exactly to the totals (None if per_layer=False).
  """
  return count_jaxpr(jax.make_jaxpr(fn)(*args), row_key=row_key, per_layer=per_layer)

