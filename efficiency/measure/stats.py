"""Summary statistics of latency samples, with a distribution-free CI of the median.

The 95% confidence interval of the median uses order statistics: with n
samples, the number below the true median is Binomial(n, 1/2), so
[x_(l), x_(n+1-l)] (1-based order statistics) covers it with probability
1 - 2 P(B <= l - 1). l is the largest rank keeping that coverage >= 95%; the
achieved coverage is reported. With fewer than 6 samples no such interval
exists and the bounds are None.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

CONFIDENCE = 0.95


def _binomial_half_cdf(n: int) -> np.ndarray:
  """P(B <= k) for k = 0..n, B ~ Binomial(n, 1/2), computed in log space."""
  k = np.arange(n)
  log_pmf = np.concatenate([[-n * np.log(2.0)], np.cumsum(np.log(n - k) - np.log(k + 1))])
  log_pmf[1:] += -n * np.log(2.0)
  return np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
  """(low, high, coverage): 0-based indices into the sorted samples, or None if n is too small."""
  if n < 1:
    return None
  cdf = _binomial_half_cdf(n)
  alpha_half = (1.0 - confidence) / 2.0
  # The largest l with P(B <= l - 1) <= alpha/2; ranks are 1-based here.
  candidates = np.nonzero(cdf[: (n + 1) // 2] <= alpha_half)[0]
  if candidates.size == 0:
    return None
  rank = int(candidates[-1]) + 1
  coverage = 1.0 - 2.0 * float(cdf[rank - 1])
  return rank - 1, n - rank, coverage


def latency_stats(samples_s: Sequence[float]) -> dict[str, Any]:
  """Mean, std, median, percentiles, IQR, Tukey outliers and a 95% CI of the median.

  All values are in the unit of the input (seconds); std is the sample std
  (ddof=1). `outliers` counts samples outside [q1 - 1.5 IQR, q3 + 1.5 IQR].
  """
  x = np.sort(np.asarray(samples_s, dtype=np.float64))
  n = int(x.size)
  if n == 0:
    raise ValueError('latency_stats needs at least one sample')
  q = np.percentile(x, [10, 25, 50, 75, 90, 99])
  iqr = float(q[3] - q[1])
  low_fence, high_fence = q[1] - 1.5 * iqr, q[3] + 1.5 * iqr
  ranks = median_ci_ranks(n)
  ci_low = ci_high = coverage = None
  if ranks is not None:
    ci_low, ci_high, coverage = float(x[ranks[0]]), float(x[ranks[1]]), ranks[2]
  median = float(q[2])
  return {
      'n': n,
      'mean': float(x.mean()),
      'std': float(x.std(ddof=1)) if n > 1 else 0.0,
      'median': median,
      'min': float(x[0]),
      'max': float(x[-1]),
      'p10': float(q[0]),
      'q1': float(q[1]),
      'q3': float(q[3]),
      'p90': float(q[4]),
      'p99': float(q[5]),
      'iqr': iqr,
      'outliers': int(np.count_nonzero((x < low_fence) | (x > high_fence))),
      'median_ci95_low': ci_low,
      'median_ci95_high': ci_high,
      'median_ci_coverage': coverage,
      'median_ci95_half_width': None if ci_low is None else (ci_high - ci_low) / 2.0,
  }
