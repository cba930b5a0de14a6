r"""A short study for checking a new machine (a GPU, say): the base model plus a few cheap points.

  python benchmark.py --config=configs/studies/quick.py --workdir=runs/quick
  bash benchmarks/gpu_check.sh     # runs this study and the base benchmark on an NVIDIA GPU

The base model, evaluated at two lower resolutions (no retraining), and two
narrower models trained for a few epochs: enough rows for every report section.
"""

from configs import studies


def get_config():
  config = studies.base_config()
  fixed = dict(studies.SWEPT_MEASURE)
  config.sweep = [
      dict(study='resolution', method='area', protocol='evaluate',
           product={'input.resolution': [4, 6], 'input.resize': ['area']}, fixed=fixed),
      dict(study='params', method='width', product={'model.width': [8, 16]},
           fixed=dict(fixed, **{'train.epochs': 10})),
  ]
  return config
