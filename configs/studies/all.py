r"""All four studies in one sweep: base, resolution, params, combined (the README's `make study`).

  python benchmark.py --config=configs/studies/all.py --workdir=runs/default

Points shared by two studies are computed once. The report is written to
runs/default/report/report.md.
"""

from configs import studies
from configs.studies import combined, params, resolution


def get_config():
  config = studies.base_config()
  width, depth = config.model.width, config.model.depth
  config.sweep = resolution.groups() + params.groups(width, depth) + combined.groups(width, depth)
  return config
