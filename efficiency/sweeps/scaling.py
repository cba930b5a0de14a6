"""EfficientNet-style compound scaling of a model's depth and width (Tan & Le 2019).

For a scaling step `phi` (negative shrinks, positive grows):

  depth = ceil(base_depth * alpha ** phi)                  (EfficientNet's round_repeats)
  width = round_to_divisor(base_width * beta ** phi)       (EfficientNet's round_filters)

where round_to_divisor rounds to the nearest multiple of `divisor` (at least
`divisor`) and adds one `divisor` when that falls below 90% of the exact value.
EfficientNet chose alpha=1.2 (depth), beta=1.1 (width), gamma=1.15 (resolution)
by grid search so that alpha * beta**2 * gamma**2 ~= 2: each step about doubles
the FLOPs. Resolution is studied on its own here, so one step scales FLOPs by
about alpha * beta**2 = 1.45.
"""

from __future__ import annotations

import math

EFFICIENTNET_ALPHA = 1.2  # depth
EFFICIENTNET_BETA = 1.1  # width
EFFICIENTNET_GAMMA = 1.15  # resolution (not used: resolution is its own study)


def round_width(width: float, divisor: int = 1) -> int:
  """EfficientNet's round_filters: nearest multiple of `divisor`, never below 90% of `width`."""
  rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * width:
    rounded += divisor
  return int(rounded)


def round_depth(depth: float) -> int:
  """EfficientNet's round_repeats: round up (a small tolerance keeps 2.0000001 at 2)."""
  return max(1, int(math.ceil(depth - 1e-9)))


def compound_scale(base_width: int, base_depth: int, phi: float, *,
                   alpha: float = EFFICIENTNET_ALPHA, beta: float = EFFICIENTNET_BETA,
                   width_divisor: int = 1) -> tuple[int, int]:
  """(width, depth) of the model `phi` compound-scaling steps away from the base."""
  return (round_width(base_width * beta**phi, width_divisor),
          round_depth(base_depth * alpha**phi))


def compound_zip(base_width: int, base_depth: int, phis: list[float],
                 **kwargs) -> dict[str, list[int]]:
  """A sweep group's `zip` section for compound scaling at each step of `phis`."""
  sizes = [compound_scale(base_width, base_depth, phi, **kwargs) for phi in phis]
  return {'model.width': [w for w, _ in sizes], 'model.depth': [d for _, d in sizes]}


def describe(phis: list[float], *, alpha: float = EFFICIENTNET_ALPHA,
             beta: float = EFFICIENTNET_BETA, width_divisor: int = 1) -> str:
  """One line for the report stating the coefficients and the rounding."""
  return (f'Depth and width scaled together (EfficientNet, Tan & Le 2019): depth = ceil(d0 * '
          f'{alpha}^phi), width = w0 * {beta}^phi rounded to a multiple of {width_divisor} (not '
          f'below 90%), phi in {list(phis)}; each step scales FLOPs by about alpha*beta^2 = '
          f'{alpha * beta**2:.2f}.')
