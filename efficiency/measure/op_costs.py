"""The cost of one jaxpr equation: FLOPs, MACs, transcendentals and bytes.

Conventions (chosen to match XLA's HloCostAnalysis, so the two counts can be
compared; every record states them):

* One multiply-add = 2 FLOPs; `macs` counts the multiply-adds of `dot_general`
  and `conv_general_dilated` only.
* Convolutions are counted two ways: `dense` (output size x kernel window x
  input channels per group: taps that fall on padding or on lhs-dilation holes
  are counted, as fvcore/ptflops/thop and most papers do) and `valid` (only taps
  that land on a real input element, exactly as XLA counts).
* Element-wise arithmetic, comparisons, select, clamp and dtype conversions cost
  1 FLOP per output element; `integer_pow` costs the multiplies of square-and-
  multiply. exp, log, tanh, logistic, sqrt, rsqrt, pow, erf, trigonometric and
  hyperbolic functions are `transcendentals` (1 per element), not FLOPs, as in XLA.
* Reductions cost (input elements - output elements); windowed reductions
  (pooling) cost (window size - 1) per output element; cumulative ops 1 per element.
* Data movement (reshape, transpose, broadcast, slice, pad, gather, concatenate, ...)
  costs 0 FLOPs.
* Bytes: each operand is read once and each output written once per equation
  (no fusion, no caching), the same model as XLA's unoptimised HLO.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

ELEMENTWISE = frozenset({
    'add', 'add_any', 'sub', 'mul', 'div', 'rem', 'max', 'min', 'neg', 'abs', 'sign',
    'floor', 'ceil', 'round', 'nextafter', 'select_n', 'clamp', 'eq', 'ne', 'lt', 'le',
    'gt', 'ge', 'and', 'or', 'not', 'xor', 'shift_left', 'shift_right_logical',
    'shift_right_arithmetic', 'population_count', 'clz', 'is_finite', 'square',
    'reduce_precision', 'conj', 'real', 'imag', 'complex', 'copy_sign',
})
TRANSCENDENTAL = frozenset({
    'exp', 'exp2', 'log', 'log1p', 'expm1', 'tanh', 'logistic', 'sin', 'cos', 'tan',
    'asin', 'acos', 'atan', 'atan2', 'sinh', 'cosh', 'asinh', 'acosh', 'atanh', 'sqrt',
    'rsqrt', 'cbrt', 'pow', 'erf', 'erfc', 'erf_inv', 'lgamma', 'digamma', 'igamma',
    'igammac', 'bessel_i0e', 'bessel_i1e', 'polygamma', 'zeta', 'regularized_incomplete_beta',
})
REDUCTION = frozenset({
    'reduce_sum', 'reduce_max', 'reduce_min', 'reduce_prod', 'reduce_and', 'reduce_or',
    'reduce_xor', 'argmax', 'argmin', 'reduce',
})
WINDOW_REDUCTION = frozenset({
    'reduce_window_sum', 'reduce_window_max', 'reduce_window_min', 'reduce_window',
})
CUMULATIVE = frozenset({'cumsum', 'cumprod', 'cummax', 'cummin', 'cumlogsumexp'})
DATA_MOVEMENT = frozenset({
    'reshape', 'broadcast_in_dim', 'transpose', 'squeeze', 'expand_dims', 'slice',
    'dynamic_slice', 'dynamic_update_slice', 'gather', 'concatenate', 'pad', 'rev', 'iota',
    'copy', 'copy_p', 'device_put', 'sharding_constraint', 'bitcast_convert_type',
    'stop_gradient', 'optimization_barrier', 'split', 'select_and_gather_add',
    'random_wrap', 'random_unwrap', 'random_seed', 'mesh_cast', 'reshard', 'pvary',
    'empty', 'debug_callback',
})


@dataclasses.dataclass
class Cost:
  """Exact integer costs of some equations (see the module docstring for conventions)."""
  flops: int = 0                 # dense convolution convention
  macs: int = 0
  flops_valid: int = 0           # convolution taps on padding excluded (XLA convention)
  macs_valid: int = 0
  transcendentals: int = 0
  bytes: int = 0

  def add(self, other: Cost, times: int = 1) -> None:
    for field in dataclasses.fields(self):
      setattr(self, field.name, getattr(self, field.name) + times * getattr(other, field.name))

  def as_dict(self) -> dict[str, int]:
    return dataclasses.asdict(self)


def _size(aval) -> int:
  return int(math.prod(getattr(aval, 'shape', ())))


def _itemsize(aval) -> int:
  dtype = getattr(aval, 'dtype', None)
  if dtype is None:
    return 0
  try:
    return int(dtype.itemsize)
  except (AttributeError, TypeError):
    return int(np.dtype(dtype).itemsize)


def equation_bytes(eqn) -> int:
  """Bytes read (each operand once) plus bytes written (each output once)."""
  total = 0
  for var in list(eqn.invars) + list(eqn.outvars):
    aval = getattr(var, 'aval', None)
    if aval is not None:
      total += _size(aval) * _itemsize(aval)
  return total


def dot_general_macs(lhs_shape, out_shape, dimension_numbers) -> int:
  """Multiply-adds of a dot_general: output elements x contracted size."""
  (lhs_contracting, _), _ = dimension_numbers
  contracted = math.prod(lhs_shape[d] for d in lhs_contracting)
  return int(math.prod(out_shape)) * int(contracted)


def _valid_taps(in_size: int, out_size: int, kernel_size: int, stride: int, pad_low: int,
                lhs_dilation: int, rhs_dilation: int) -> int:
  """(output index, kernel index) pairs of one spatial dim that hit a real input element."""
  out_index = np.arange(out_size, dtype=np.int64)
  count = 0
  for k in range(kernel_size):
    undilated = out_index * stride - pad_low + k * rhs_dilation
    on_input = (undilated >= 0) & (undilated % lhs_dilation == 0)
    on_input &= undilated // lhs_dilation < in_size
    count += int(on_input.sum())
  return count


def conv_macs(lhs_shape, rhs_shape, out_shape, params) -> tuple[int, int]:
  """(dense, valid) multiply-adds of a conv_general_dilated.

  dense = output elements x kernel window x input channels per group;
  valid = the same, counting only taps that land on a real input element.
  Grouped/depthwise (feature_group_count) and batch-grouped convolutions are
  covered because the kernel's input-feature dim is already divided by groups.
  """
  dn = params['dimension_numbers']
  lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
  in_per_group = rhs_shape[rhs_spec[1]]
  kernel_spatial = [rhs_shape[d] for d in rhs_spec[2:]]
  dense = int(math.prod(out_shape)) * int(math.prod(kernel_spatial)) * int(in_per_group)
  valid_positions = 1
  for i, kernel_size in enumerate(kernel_spatial):
    valid_positions *= _valid_taps(
        in_size=lhs_shape[lhs_spec[2 + i]], out_size=out_shape[out_spec[2 + i]],
        kernel_size=kernel_size, stride=params['window_strides'][i],
        pad_low=params['padding'][i][0], lhs_dilation=params['lhs_dilation'][i],
        rhs_dilation=params['rhs_dilation'][i])
  out_batch, out_features = out_shape[out_spec[0]], out_shape[out_spec[1]]
  valid = int(out_batch) * int(out_features) * int(in_per_group) * valid_positions
  return dense, valid


def _integer_pow_ops(exponent: int) -> int:
  """Multiplies (and a final reciprocal) JAX emits for x ** exponent."""
  magnitude = abs(exponent)
  if magnitude == 0:
    return 0
  ops = (magnitude.bit_length() - 1) + (bin(magnitude).count('1') - 1)
  return ops + (1 if exponent < 0 else 0)


def equation_cost(eqn) -> Cost | None:
  """Cost of one equation without sub-jaxprs, or None if its primitive is not known."""
  name = eqn.primitive.name
  out_avals = [v.aval for v in eqn.outvars]
  in_avals = [v.aval for v in eqn.invars]
  out_elements = sum(_size(a) for a in out_avals)
  cost = Cost(bytes=equation_bytes(eqn))
  if name == 'dot_general':
    macs = dot_general_macs(in_avals[0].shape, out_avals[0].shape, eqn.params['dimension_numbers'])
    cost.macs = cost.macs_valid = macs
    cost.flops = cost.flops_valid = 2 * macs
  elif name == 'conv_general_dilated':
    dense, valid = conv_macs(in_avals[0].shape, in_avals[1].shape, out_avals[0].shape, eqn.params)
    cost.macs, cost.macs_valid = dense, valid
    cost.flops, cost.flops_valid = 2 * dense, 2 * valid
  elif name in ELEMENTWISE:
    cost.flops = cost.flops_valid = out_elements
  elif name == 'convert_element_type':
    changes_dtype = in_avals[0].dtype != out_avals[0].dtype
    cost.flops = cost.flops_valid = out_elements if changes_dtype else 0
  elif name == 'integer_pow':
    cost.flops = cost.flops_valid = out_elements * _integer_pow_ops(eqn.params['y'])
  elif name in TRANSCENDENTAL:
    cost.transcendentals = out_elements
  elif name in REDUCTION:
    reduced = max(_size(in_avals[0]) - _size(out_avals[0]), 0)
    cost.flops = cost.flops_valid = reduced
  elif name in WINDOW_REDUCTION:
    window = int(math.prod(eqn.params['window_dimensions']))
    cost.flops = cost.flops_valid = (window - 1) * _size(out_avals[0])
  elif name in CUMULATIVE:
    cost.flops = cost.flops_valid = _size(in_avals[0])
  elif name in ('scatter-add', 'scatter_add', 'scatter_mul', 'scatter_min', 'scatter_max'):
    cost.flops = cost.flops_valid = _size(in_avals[2])
  elif name in DATA_MOVEMENT or name == 'scatter':
    pass
  else:
    return None
  return cost
