r"""Study "resolution": inputs downsampled below the native 8x8 by three resize methods.

  python benchmark.py --config=configs/studies/resolution.py --workdir=runs/resolution

Methods: area (exact area average), bilinear with antialiasing, nearest (no
filtering: aliasing). Resolutions 7, 6, 5, 4. Two protocols:
  * evaluate: the trained base model on the downsampled test images, unchanged;
  * train: a model retrained at each resolution and method.
"""

from configs import studies

RESOLUTIONS = [7, 6, 5, 4]
# (input.resize, input.antialias): antialiasing applies to bilinear, not to area or nearest.
METHODS = [('area', True), ('bilinear', True), ('nearest', False)]


def groups():
  from efficiency.data.transforms import method_label
  out = []
  for protocol in ('evaluate', 'train'):
    for resize, antialias in METHODS:
      out.append(dict(
          study='resolution', method=method_label(resize, antialias), protocol=protocol,
          product={'input.resolution': RESOLUTIONS},
          fixed={'input.resize': resize, 'input.antialias': antialias, **studies.SWEPT_MEASURE}))
  return out


def get_config():
  config = studies.base_config()
  config.sweep = groups()
  return config
