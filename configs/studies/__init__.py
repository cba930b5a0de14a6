"""The four studies of the README, as sweep configs, and the settings they share.

Every study starts from configs/base.py (the base model) and declares its
sweep in `config.sweep` (see efficiency/sweeps/expand.py). The base point keeps
the base config, with a long latency measurement (`BASE_MEASURE`: enough calls
to show the first-call slowdown, the spread and the outliers); every swept point
gets the short measurement `SWEPT_MEASURE` so the whole of all.py stays within
minutes on a 2-core laptop.
"""

from configs import base

# Set on the base point (a config section: plain field names).
BASE_MEASURE = dict(warmup_calls=10, min_calls=300, max_calls=5000, fixed_calls=0,
                    min_time_s=1.0, max_time_s=3.0, rel_precision=0.01, per_layer=True)
# Set on every swept point through the group's `fixed` (dotted field names).
SWEPT_MEASURE = {'measure.warmup_calls': 3, 'measure.min_calls': 20, 'measure.max_calls': 400,
                 'measure.min_time_s': 0.05, 'measure.max_time_s': 0.3,
                 'measure.rel_precision': 0.05, 'measure.per_layer': False}


def base_config():
  """configs/base.py with the base point's long latency measurement and an empty sweep."""
  config = base.get_config()
  config.measure.update(BASE_MEASURE)
  config.sweep = []
  return config
