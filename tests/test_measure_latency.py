"""Latency statistics on synthetic samples and timing of functions of known duration."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from efficiency.config import defaults
from efficiency.errors import ConfigError
from efficiency.measure import LatencySettings, as_settings, latency_stats, time_function
from efficiency.measure.stats import median_ci_ranks


def test_stats_of_known_samples():
  samples = [float(v) for v in range(1, 102)] + [500.0, 900.0]   # 1..101 and two outliers
  stats = latency_stats(samples)
  assert stats['n'] == 103
  assert stats['median'] == 52.0
  assert (stats['min'], stats['max']) == (1.0, 900.0)
  assert stats['q1'] == np.percentile(samples, 25) and stats['q3'] == np.percentile(samples, 75)
  assert stats['iqr'] == pytest.approx(stats['q3'] - stats['q1'])
  assert stats['outliers'] == 2
  assert stats['mean'] == pytest.approx(np.mean(samples))
  assert stats['std'] == pytest.approx(np.std(samples, ddof=1))
  assert stats['median_ci95_low'] < 52.0 < stats['median_ci95_high']


def test_median_ci_ranks_match_the_binomial_table():
  # Standard order-statistic table (e.g. Conover, Practical Nonparametric Statistics):
  # n=100 -> ranks 40 and 61 (1-based); n=6 -> ranks 1 and 6; n=5 has no 95% interval.
  assert median_ci_ranks(100)[:2] == (39, 60)
  assert median_ci_ranks(6)[:2] == (0, 5)
  assert median_ci_ranks(5) is None
  assert latency_stats([1.0, 2.0, 3.0])['median_ci95_low'] is None


def test_median_ci_covers_the_true_median_about_95_percent():
  rng = np.random.default_rng(0)
  true_median = np.log(2.0)   # of Exponential(1)
  hits = 0
  trials = 800
  for _ in range(trials):
    stats = latency_stats(rng.exponential(size=40))
    hits += stats['median_ci95_low'] <= true_median <= stats['median_ci95_high']
  assert 0.93 <= hits / trials <= 0.995
  assert stats['median_ci_coverage'] >= 0.95


def _sleeper(seconds):
  def sleep(x):
    time.sleep(seconds)
    return x
  return lambda x: jax.pure_callback(sleep, jax.ShapeDtypeStruct(x.shape, x.dtype), x) + 1


def test_timing_a_known_duration_is_no_shorter_than_it():
  record = time_function(_sleeper(0.003), jnp.ones(4), settings=dict(fixed_calls=5, warmup_calls=1))
  assert record['median'] >= 0.003
  assert record['min'] >= 0.003
  assert record['first_call_s'] >= 0.003 and record['warmup_done'] == 1
  assert record['compile_s'] > 0 and record['h2d_s'] >= 0


def test_fixed_calls_gives_exactly_that_many_samples():
  record = time_function(jnp.sin, jnp.ones(8), settings=dict(fixed_calls=7, warmup_calls=0))
  assert record['n'] == 7 and len(record['samples_s']) == 7
  assert record['stopped_by'] == 'fixed'
  assert record['median'] == pytest.approx(float(np.median(record['samples_s'])))
  asynchronous = jax.config.read('jax_cpu_enable_async_dispatch')
  assert record['dispatch'] == ('asynchronous' if asynchronous else 'synchronous')


def test_adaptive_timing_stops_within_bounds():
  settings = dict(min_calls=10, max_calls=60, min_time_s=0.0, max_time_s=1.0, warmup_calls=2)
  record = time_function(_sleeper(0.001), jnp.ones(4), settings=settings)
  assert 10 <= record['n'] <= 60
  assert record['stopped_by'] in ('precision', 'max_calls', 'max_time')
  if record['stopped_by'] == 'precision':
    assert record['median_ci95_half_width'] <= 0.02 * record['median']

  capped = time_function(jnp.cos, jnp.ones(4), settings=dict(
      min_calls=7, max_calls=7, rel_precision=1e-12, warmup_calls=0))
  assert (capped['n'], capped['stopped_by']) == (7, 'max_calls')

  timed_out = time_function(_sleeper(0.02), jnp.ones(4), settings=dict(
      min_calls=1000, max_calls=2000, min_time_s=0.0, max_time_s=0.1, warmup_calls=0))
  assert timed_out['stopped_by'] == 'max_time'
  assert 3 <= timed_out['n'] < 1000
  assert timed_out['timed_s'] < 1.0


def test_settings_from_config_dict_and_errors():
  measure = defaults().measure
  settings = as_settings(measure)
  assert settings == LatencySettings(**{k: measure[k] for k in (
      'warmup_calls', 'min_calls', 'max_calls', 'fixed_calls', 'min_time_s', 'max_time_s',
      'rel_precision')})
  with pytest.raises(ConfigError, match='max_calls'):
    as_settings(dict(min_calls=10, max_calls=5))
  with pytest.raises(ConfigError, match='rel_precision'):
    LatencySettings(rel_precision=0.0)
