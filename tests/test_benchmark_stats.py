"""The benchmarks' statistics: the median's confidence interval and the per-round paired ratios."""

import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'benchmarks'))
import common  # noqa: E402


def test_median_interval_ranks_follow_the_binomial():
  values = list(range(16, 0, -1))            # unsorted on purpose
  middle, low, high, coverage = common.median_interval(values)
  assert middle == 8.5
  # n = 16: ranks 4 and 13 cover 1 - 2 P(B < 4) = 97.9%; ranks 5 and 12 only 92.3%.
  assert (low, high) == (4, 13)
  assert coverage == pytest.approx(1 - 2 * sum(math.comb(16, i) for i in range(4)) / 2 ** 16)
  assert coverage >= 0.95 > 1 - 2 * sum(math.comb(16, i) for i in range(5)) / 2 ** 16


def test_median_interval_of_few_values_is_the_range_with_its_coverage():
  middle, low, high, coverage = common.median_interval([3.0, 1.0, 2.0])
  assert (middle, low, high) == (2.0, 1.0, 3.0)
  assert coverage == pytest.approx(0.75)
  with pytest.raises(ValueError):
    common.median_interval([])


def test_median_interval_covers_the_true_median_about_as_often_as_it_says():
  rng = np.random.default_rng(0)
  trials, hits = 2000, 0
  for _ in range(trials):
    sample = rng.lognormal(0.0, 0.5, size=20)        # true median 1.0
    _, low, high, coverage = common.median_interval(list(sample))
    hits += low <= 1.0 <= high
  assert coverage >= 0.95
  assert abs(hits / trials - coverage) < 0.02


def test_paired_ratio_cancels_load_shared_by_a_round():
  # Load multiplies both sides' times in a round; ours is 0.9x theirs throughout.
  load = [1.0, 1.6, 0.8, 2.5, 1.1, 1.3, 0.9, 1.8, 1.0, 1.2]
  samples = {'flax': [[0.9 * f, 0.9 * f] for f in load],
             'torch': [[1.0 * f] for f in load],
             'torch.compile': [[1.2 * f] for f in load]}
  assert common.round_ratios(samples, 'flax', ['torch', 'torch.compile']) == pytest.approx([0.9] * 10)
  assert common.paired_ratio(samples, 'flax', 'torch', goal=1.0) == '0.90 [0.90, 0.90]: <= 1 met'
  assert common.paired_ratio(samples, 'torch.compile', 'flax', goal=1.0).endswith('missed')


def test_paired_ratio_says_within_noise_when_the_interval_straddles_the_goal():
  samples = {'a': [[r] for r in (0.8, 1.2, 0.9, 1.1, 1.0, 0.95, 1.05, 0.85, 1.15, 1.0)],
             'b': [[1.0]] * 10}
  assert common.paired_ratio(samples, 'a', 'b', goal=1.0).endswith('within noise')
  assert common.paired_ratio({'a': [], 'b': []}, 'a', 'b') == '-'
  few = {'a': [[0.5]] * 5, 'b': [[1.0]] * 5}
  assert common.paired_ratio(few, 'a', 'b', goal=1.0) == (
      '0.50 [0.50, 0.50] (94% interval): <= 1 undecided (6 rounds or more decide)')
  medians, bests = common.summary(samples, ['a', 'b'])
  assert medians['a'] == pytest.approx(1.0) and bests['a'] == 0.8
  assert common.call_counts(samples, ['a', 'b']) == '10 / 10'
