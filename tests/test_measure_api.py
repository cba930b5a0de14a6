"""Hardware report, and the one-call records of measure_model / measure_function."""

import json
import os
import re

import flax
import jax
import jax.numpy as jnp
import psutil
import pytest
from flax import nnx

from efficiency import cpu_info
from efficiency.measure import (api, count_params, format_summary, hardware_id,
                                hardware_report, measure_function, measure_model)

FAST = dict(fixed_calls=3, warmup_calls=0)


class BNNet(nnx.Module):
  """Conv + BatchNorm + relu, global pool, linear."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
    self.bn = nnx.BatchNorm(4, rngs=rngs)
    self.head = nnx.Linear(4, 3, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.head(nnx.relu(self.bn(self.conv(x))).mean(axis=(1, 2)))


def test_hardware_report_is_filled_on_this_machine():
  report = hardware_report()
  assert report['cpu_model'] and report['cpu_model'] != 'unknown'
  assert report['cpu_logical_cores'] == psutil.cpu_count()
  assert report['usable_cores'] >= 1
  assert report['ram_bytes'] == psutil.virtual_memory().total
  assert report['versions']['jax'] == jax.__version__
  assert report['versions']['flax'] == flax.__version__
  assert report['backend'] == jax.default_backend()
  assert len(report['devices']) == jax.device_count() == report['device_count']
  assert report['devices'][0]['platform'] == jax.devices()[0].platform
  assert report['env']['JAX_PLATFORMS'] == os.environ.get('JAX_PLATFORMS')
  if os.path.isdir('/sys/devices/system/cpu/cpu0/cache'):
    assert report['cpu_caches']
  json.dumps(report)
  assert re.fullmatch(r'cpu-[a-z0-9-]+-\d+c', hardware_id(report))
  if os.path.exists('/proc/cpuinfo'):
    assert report['cpu_signature'].get('simd')
    assert report['cpu_signature']['simd'] in hardware_id(report)


_X86_CPUINFO = '''processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx fma avx2 avx512f avx512bw

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
flags\t\t: fpu sse4_2
'''
_ARM_CPUINFO = '''processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes sve
CPU implementer\t: 0x41
CPU part\t: 0xd40
'''


@pytest.mark.parametrize('text, expected', [
    (_X86_CPUINFO, dict(vendor='AuthenticAMD', family='25', model='17', stepping='1',
                        simd='avx512')),
    (_X86_CPUINFO.replace(' avx512f avx512bw', ''),
     dict(vendor='AuthenticAMD', family='25', model='17', stepping='1', simd='avx2')),
    (_ARM_CPUINFO, dict(implementer='0x41', part='0xd40', simd='sve')),
    (_ARM_CPUINFO.replace(' sve', ''), dict(implementer='0x41', part='0xd40', simd='neon')),
    ('', {}),
])
def test_cpu_signature_reads_the_first_processor(text, expected):
  assert cpu_info.cpu_signature(text) == expected


def test_hardware_id_tells_apart_cpus_with_one_name():
  base = dict(backend='cpu', cpu_model='AMD EPYC', usable_cores=2)
  zen3 = dict(base, cpu_signature=dict(family='25', model='1', simd='avx2'))
  zen4 = dict(base, cpu_signature=dict(family='25', model='17', simd='avx512'))
  masked = dict(base, cpu_signature=dict(family='25', model='17', simd='avx2'))
  arm = dict(base, cpu_model='aarch64', cpu_signature=dict(part='0xd40', simd='sve'))
  ids = [hardware_id(r) for r in (zen3, zen4, masked, arm)]
  assert ids == ['cpu-amd-epyc-f25m1-avx2-2c', 'cpu-amd-epyc-f25m17-avx512-2c',
                 'cpu-amd-epyc-f25m17-avx2-2c', 'cpu-aarch64-pd40-sve-2c']
  assert hardware_id(base) == 'cpu-amd-epyc-2c'  # a report written before cpu_signature


def test_hardware_report_is_cached_and_copied():
  first = hardware_report()
  first['cpu_model'] = 'changed'
  assert hardware_report()['cpu_model'] != 'changed'
  assert hardware_id({'backend': 'gpu', 'devices': [{'platform': 'gpu', 'kind': 'NVIDIA H200'}] * 2}
                     ) == 'gpu-nvidia-h200x2'


def test_measure_model_record():
  model = BNNet(rngs=nnx.Rngs(0))
  record = measure_model(model, (8, 8, 3), settings=FAST, throughput_batch=4)
  json.dumps(record)
  assert model.bn.use_running_average is False   # the caller's model keeps its mode
  assert record['params'] == count_params(model)
  one, four = record['costs']['1'], record['costs']['4']
  assert record['flops'] == one['flops'] > 0 and record['macs'] == one['macs']
  assert four['macs'] == 4 * one['macs']
  assert four['macs_per_example'] == one['macs']
  assert abs(record['xla_over_jaxpr'] - 1.0) < 0.05
  assert record['bytes_source'] == 'xla_lowered' and record['arithmetic_intensity'] > 0
  assert sum(row['flops'] for row in record['per_layer']) == record['flops']
  assert {row['name'] for row in record['per_layer']} >= {'conv', 'bn', 'head'}
  assert record['latency']['n'] == 3 and len(record['latency']['samples_s']) == 3
  assert record['latency_s'] == record['latency']['median']
  assert record['throughput'] == 4 / record['throughput_timing']['median']
  assert record['hardware_id'] == hardware_id(record['hardware'])
  assert record['device_count'] == jax.device_count()
  assert '2 FLOPs' in record['convention']
  assert not [key for key in record if key.endswith('_error')]
  text = format_summary(record)
  for needle in ('Params: ', 'XLA/jaxpr', 'head', 'Latency (batch 1)', 'Throughput', 'Hardware'):
    assert needle in text


def test_measure_function_uses_named_scopes_and_examples_per_call():
  def mlp(x, w):
    with jax.named_scope('layer'):
      return jax.nn.relu(x @ w)

  record = measure_function(mlp, jnp.ones((5, 6)), jnp.ones((6, 7)), settings=FAST,
                            examples_per_call=5)
  json.dumps(record)
  assert record['macs'] == 5 * 6 * 7
  assert record['flops_xla'] == record['flops'] == 2 * 5 * 6 * 7 + 5 * 7
  assert [row['name'] for row in record['per_layer']] == ['layer']
  assert record['throughput'] == 5 / record['latency_s']
  assert 'Per scope' in format_summary(record)


def test_a_failing_measurement_is_recorded_not_swallowed(monkeypatch):
  def broken(*args, **kwargs):
    raise RuntimeError('timer exploded')

  monkeypatch.setattr(api.latency, 'time_function', broken)
  record = measure_model(BNNet(rngs=nnx.Rngs(0)), (8, 8, 3), settings=FAST, throughput_batch=2)
  assert record['latency'] is None and 'timer exploded' in record['latency_error']
  assert record['throughput'] is None and 'timer exploded' in record['throughput_timing_error']
  assert record['flops'] > 0 and record['params']['trainable'] > 0
  assert 'FAILED - RuntimeError: timer exploded' in format_summary(record)
