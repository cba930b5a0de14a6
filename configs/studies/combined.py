r"""Study "combined": a grid of 3 input resolutions x 3 model scales.

  python benchmark.py --config=configs/studies/combined.py --workdir=runs/combined

Resolutions 8 (native), 6, 4 (area downsampling, as the base model); scales from
compound scaling with phi = -6, -3, 0, i.e. (width, depth) = (18, 2), (24, 2),
(32, 3) (see configs/studies/params.py). Every point is trained at its
resolution. The native-resolution point at phi = 0 is the base model itself, so
it is declared without overrides and shares the base point.
"""

from configs import studies
from efficiency.sweeps import scaling

RESOLUTIONS = [8, 6, 4]
PHIS = [-6, -3, 0]


def groups(base_width: int = 32, base_depth: int = 3, native: int = 8):
  scales = scaling.compound_zip(base_width, base_depth, PHIS)
  smaller = {'model.width': scales['model.width'][:-1], 'model.depth': scales['model.depth'][:-1]}
  grid = dict(study='combined', method='grid')
  below_native = [r for r in RESOLUTIONS if r != native]
  return [
      dict(grid, product={'input.resolution': below_native}, zip=scales,
           fixed=dict(studies.SWEPT_MEASURE)),
      dict(grid, zip=smaller, fixed=dict(studies.SWEPT_MEASURE)),  # native resolution
      dict(grid),  # native resolution, phi = 0: the base point
  ]


def get_config():
  config = studies.base_config()
  config.sweep = groups(config.model.width, config.model.depth)
  return config
