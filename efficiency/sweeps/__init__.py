"""Sweeps over resolution, width and depth: expansion of config.sweep, the runner, the table.

`run_sweep(config, workdir)` computes every point of the sweep a config declares
(see efficiency.sweeps.expand for the declaration) and writes the results table
and sweep.json that efficiency.report turns into a report; `combine` merges
sweeps from several machines. Heavy modules (training, measurement) load on use.
"""

# `expand` stays the submodule (efficiency.config calls expand.validate_sweep): use
# `efficiency.sweeps.expand.expand(config)` for the points.
from efficiency.sweeps import expand
from efficiency.sweeps.expand import Point, point_id_of, validate_sweep
from efficiency.sweeps.table import COLUMNS

__all__ = ['COLUMNS', 'Point', 'combine', 'expand', 'point_id_of', 'run_sweep', 'validate_sweep']


def __getattr__(name: str):
  if name == 'run_sweep':
    from efficiency.sweeps.runner import run_sweep
    return run_sweep
  if name == 'combine':
    from efficiency.sweeps.combine import combine
    return combine
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
