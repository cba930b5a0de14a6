r"""Study "base": the base model alone: accuracy, parameters, FLOPs and its latency distribution.

  python benchmark.py --config=configs/studies/base.py --workdir=runs/base_study

The latency sample is long (at least 300 timed calls and 1 s, see
configs/studies/__init__.py BASE_MEASURE) so the report can show the first-call
slowdown, the spread and the outliers.
"""

from configs import studies


def get_config():
  return studies.base_config()  # an empty sweep: the base point only
