"""Run in a subprocess with several (fake CPU) devices by tests/test_parallel.py; prints JSON.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/parallel_checks.py step TFDS_DIR
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from efficiency import config as cfg  # noqa: E402
from efficiency import training  # noqa: E402
from efficiency.training import steps  # noqa: E402
from efficiency.training.sharding import data_parallel  # noqa: E402
from efficiency.training.trained import build_model_and_optimizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(tfds_dir):
  config = cfg.load_config_file(os.path.join(ROOT, 'configs', 'tiny.py'))
  config.dataset.data_dir = tfds_dir
  return config


def one_step(config, inputs, devices):
  """Parameters after one train step on a mesh over `devices`."""
  parallel = data_parallel(devices)
  model, optimizer = build_model_and_optimizer(config, inputs.num_classes, inputs.input_shape[-1], 10)
  model.train()
  graphdef, state = nnx.split((model, optimizer))
  step = steps.make_train_step(graphdef, num_classes=inputs.num_classes, label_smoothing=0.0)
  idx = np.arange(config.train.batch_size)
  teacher = np.zeros((idx.size, inputs.num_classes), np.float32)
  state, metrics = step(parallel.put_state(state), parallel.put_batch(inputs.train_x[idx]),
                        parallel.put_batch(inputs.train_y[idx]), parallel.put_batch(teacher))
  leaves = [np.asarray(x) for x in jax.tree.leaves(nnx.state(nnx.merge(graphdef, state)[0], nnx.Param))]
  return leaves, float(metrics['loss_sum'])


def check_step(tfds_dir):
  config = tiny_config(tfds_dir)
  inputs = training.prepare_inputs(config)
  many, loss_many = one_step(config, inputs, jax.devices())
  one, loss_one = one_step(config, inputs, jax.devices()[:1])
  diff = max(float(np.max(np.abs(a - b))) for a, b in zip(many, one))
  return dict(devices=jax.device_count(), max_param_diff=diff, loss_many=loss_many, loss_one=loss_one)


def check_train(tfds_dir, workdir):
  config = tiny_config(tfds_dir)
  config.train.epochs = 4
  result = training.train(config, workdir)
  return dict(devices=result['device_count'], accuracy=result['test']['accuracy'])


def check_measure():
  from efficiency import measure
  from efficiency.models import registry
  model = registry.create_model(dict(name='cnn', width=8, depth=3), num_classes=10, in_channels=1,
                                rngs=nnx.Rngs(0))
  settings = dict(fixed_calls=3, warmup_calls=1, min_calls=1)
  many = measure.measure_data_parallel(model, (8, 8, 1), batch_size=16, settings=settings)
  one = measure.measure_data_parallel(model, (8, 8, 1), batch_size=4, settings=settings,
                                      devices=jax.devices()[:1])
  return dict(many={k: v for k, v in many.items() if k != 'latency'},
              one={k: v for k, v in one.items() if k != 'latency'},
              samples=len(many['latency']['samples_s']))


def check_window(steps_run, window_size):
  """`steps_run` data-parallel steps (each with a cross-device sum) dispatched back to back
  through a StepWindow of `window_size` (0: none). Without one, jaxlib 0.10.2 on 2 cores hangs
  here: each device queues 32 programs, then the runtime's pool stalls (see sharding.py)."""
  import jax.numpy as jnp
  from efficiency.training.sharding import StepWindow
  parallel = data_parallel()

  @jax.jit
  def step(w, x):
    grad = jax.grad(lambda w: jnp.mean(jnp.tanh(x @ w) ** 2))(w)
    return w - 0.1 * grad, jnp.sum(grad)

  w = parallel.put_state(np.ones((32, 32), np.float32))
  x = parallel.put_batch(np.ones((4 * jax.device_count(), 32), np.float32))
  window = StepWindow(window_size) if window_size else None
  total = None
  for _ in range(steps_run):
    w, s = step(w, x)
    total = s if total is None else total + s
    if window:
      window.add(s)
  return dict(devices=jax.device_count(), steps=steps_run, total=float(total))


if __name__ == '__main__':
  what = sys.argv[1]
  if what == 'measure':
    out = check_measure()
  elif what == 'window':
    out = check_window(int(sys.argv[2]), int(sys.argv[3]))
  elif what == 'step':
    out = check_step(sys.argv[2])
  else:
    out = check_train(sys.argv[2], sys.argv[3])
  print('RESULT ' + json.dumps(out))
