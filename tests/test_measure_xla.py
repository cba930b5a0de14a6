"""XLA cost-analysis normalisation (every form JAX returns) and the compiled-program record."""

import jax.numpy as jnp
from jax import lax

from efficiency.measure import normalize_cost_analysis, xla_cost
from efficiency.measure.xla_analysis import program_features


def test_dict_form():
  out = normalize_cost_analysis({'flops': 10.0, 'bytes accessed': 40.0, 'transcendentals': 2.0,
                                 'utilization0{}': 1.0})
  assert (out['flops'], out['bytes_accessed'], out['transcendentals']) == (10.0, 40.0, 2.0)
  assert out['status'] == 'ok' and out['notes'] == []


def test_missing_key_is_zero_as_xla_omits_zero_counts():
  out = normalize_cost_analysis({'flops': 10.0, 'bytes accessed': 40.0})
  assert out['transcendentals'] == 0.0 and out['status'] == 'ok'


def test_list_of_dicts_form_uses_the_first_and_says_so():
  out = normalize_cost_analysis([{'flops': 5.0, 'bytes accessed': 8.0},
                                 {'flops': 7.0, 'bytes accessed': 8.0}])
  assert out['flops'] == 5.0
  assert any('2 programs' in note for note in out['notes'])
  assert normalize_cost_analysis([{'flops': 3.0, 'bytes accessed': 1.0}])['flops'] == 3.0


def test_none_and_empty_forms_are_unavailable():
  for raw in (None, [], [None], {}):
    out = normalize_cost_analysis(raw)
    assert out['status'] == 'unavailable'
    assert out['flops'] is None and out['bytes_accessed'] is None
    assert out['notes']


def test_negative_counts_become_none_with_a_note():
  out = normalize_cost_analysis({'flops': -1.0, 'bytes accessed': 100.0, 'transcendentals': -1.0})
  assert out['flops'] is None and out['transcendentals'] is None
  assert out['bytes_accessed'] == 100.0
  assert out['status'] == 'partial'
  assert any('-1' in note for note in out['notes'])


def test_zero_flops_is_kept_but_flagged():
  out = normalize_cost_analysis({'flops': 0.0, 'bytes accessed': 16.0})
  assert out['flops'] == 0.0
  assert any('0 FLOPs' in note for note in out['notes'])


def test_program_features_find_custom_calls_and_loops():
  text = ('%c = f32[4] custom-call(%a), custom_call_target="__cublas$gemm"\n'
          '%w = (s32[], f32[4]) while(%t), condition=%cond, body=%body\n')
  assert program_features(text) == {'custom_calls': ['__cublas$gemm'], 'while_loops': 1}


def test_record_of_a_real_function():
  x, w = jnp.ones((8, 16)), jnp.ones((16, 4))
  record = xla_cost(lambda x, w: jnp.tanh(x @ w), x, w)
  assert record['flops'] == 2 * 8 * 16 * 4
  assert record['transcendentals'] == 8 * 4
  assert record['status'] == 'ok'
  assert record['compile_s'] > 0 and record['lower_s'] > 0
  assert record['bytes_source'] == 'xla_lowered'
  assert record['bytes_for_intensity'] == record['bytes_accessed_lowered'] > 0
  if record['memory'] is not None:
    assert record['memory']['argument_size_in_bytes'] == 4 * (8 * 16 + 16 * 4)
    assert record['memory']['output_size_in_bytes'] == 4 * 8 * 4
  else:
    assert record['memory_error']


def test_while_loop_makes_the_status_partial():
  record = xla_cost(lambda x: lax.while_loop(lambda c: c.sum() < 1e6, lambda c: c * 2.0, x),
                    jnp.ones(4))
  assert record['while_loops'] >= 1
  assert record['status'] == 'partial'
  assert any('while loop' in note for note in record['notes'])
