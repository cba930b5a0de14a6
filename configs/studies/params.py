r"""Study "params": fewer (and more) parameters at the native resolution.

  python benchmark.py --config=configs/studies/params.py --workdir=runs/params

Methods, four sizes each (the base model is width 32, depth 3):
  * width: 4, 8, 16, 24 channels in the first layer;
  * depth: 1, 2, 4, 5 layers;
  * compound (EfficientNet, Tan & Le 2019): depth = ceil(3 * 1.2^phi), width =
    32 * 1.1^phi rounded to the nearest integer (not below 90% of it), for phi in
    -12, -9, -6, -3: (width, depth) = (10, 1), (14, 1), (18, 2), (24, 2). alpha =
    1.2 and beta = 1.1 are EfficientNet's depth and width coefficients; its
    resolution coefficient is not used because resolution is its own study (see
    efficiency/sweeps/scaling.py). Each step scales FLOPs by about 1.2 * 1.1^2 =
    1.45;
  * distill: the widths of the width study trained again with the base model as
    teacher (distill_alpha 0.5, temperature 4), to compare with plain training.
"""

from configs import studies
from efficiency.sweeps import scaling

WIDTHS = [4, 8, 16, 24]
DEPTHS = [1, 2, 4, 5]
PHIS = [-12, -9, -6, -3]
ALPHA, BETA, WIDTH_DIVISOR = scaling.EFFICIENTNET_ALPHA, scaling.EFFICIENTNET_BETA, 1


def groups(base_width: int = 32, base_depth: int = 3):
  fixed = dict(studies.SWEPT_MEASURE)
  compound = scaling.compound_zip(base_width, base_depth, PHIS, alpha=ALPHA, beta=BETA,
                                  width_divisor=WIDTH_DIVISOR)
  return [
      dict(study='params', method='width', product={'model.width': WIDTHS}, fixed=fixed),
      dict(study='params', method='depth', product={'model.depth': DEPTHS}, fixed=fixed),
      dict(study='params', method='compound', zip=compound, fixed=fixed,
           method_description=scaling.describe(PHIS, alpha=ALPHA, beta=BETA,
                                               width_divisor=WIDTH_DIVISOR)),
      dict(study='params', method='distill', protocol='distill', product={'model.width': WIDTHS},
           fixed=fixed),
  ]


def get_config():
  config = studies.base_config()
  config.sweep = groups(config.model.width, config.model.depth)
  return config
