"""The things the benchmarks time ("sides"), each in its own worker process, taking turns.

A side is built by name in a fresh process (`SideProcess`), so JAX's and
PyTorch's thread pools, allocator settings and XLA flags never share a
process: a Flax side with `tuned_runtime=True` calls
`efficiency.cpu_runtime.configure()` first (as the toolkit's entry points
do), PyTorch sides keep their defaults. The parent
(`alternate`) asks each side in turn for a few timed calls per round, so a
slow spell on a shared machine hits every side alike. Each call ends when its
result is ready (`jax.block_until_ready`; PyTorch on CPU is synchronous).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

THREADS = 2
WIDTH, DEPTH, NUM_CLASSES = 32, 3, 10


def random_batch(batch: int, input_shape: tuple[int, ...], seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(batch, *input_shape)).astype(np.float32)
  labels = rng.integers(0, NUM_CLASSES, size=batch).astype(np.int32)
  return images, labels


def flax_model(family: str, input_shape: tuple[int, ...], reference: bool = False):
  """The registry's model; `reference=True` runs its convs through plain `lax.conv_general_dilated`.

  (The reference keeps the models' other speed choices, e.g. MobileNet's pooling as a matrix
  product; the training step's reference also updates the parameters array by array.)
  """
  from flax import nnx

  from efficiency.models import layers, registry
  model = registry.create_model(dict(name=family, width=WIDTH, depth=DEPTH),
                                num_classes=NUM_CLASSES, in_channels=input_shape[-1],
                                rngs=nnx.Rngs(0))
  return layers.use_lax_convolutions(model) if reference else model


def flax_train_step(family: str, input_shape: tuple[int, ...], batch: int,
                    reference: bool = False) -> tuple[Callable[..., Any], Any, tuple]:
  """(the toolkit's own jitted train step, its state, its arguments on the device).

  AdamW with the base config's schedule; `reference=True`: lax convolutions and the
  per-array optimizer (`make_optimizer(flat=False)`).
  """
  import jax
  from flax import nnx

  from efficiency.config import defaults
  from efficiency.training import optim, steps
  model = flax_model(family, input_shape, reference)
  model.train()
  tx = optim.make_optimizer(defaults().train, steps_per_epoch=100, flat=not reference)
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  images, labels = random_batch(batch, input_shape)
  args = jax.device_put((images, labels, np.zeros((batch, NUM_CLASSES), np.float32)))
  step = steps.make_train_step(graphdef, num_classes=NUM_CLASSES, label_smoothing=0.0)
  return step, state, args


def step_caller(step: Callable[..., Any], state: Any, args: tuple) -> Callable[[], Any]:
  """One call of the compiled `step`, its state donated and carried to the next call."""
  import jax
  compiled = step.lower(state, *args).compile()
  box = [state]

  def call():
    box[0], metrics = compiled(box[0], *args)
    jax.block_until_ready(metrics)
  return call


def flax_train(family: str, input_shape: tuple[int, ...], batch: int,
               reference: bool = False) -> Callable[[], Any]:
  """One training step (`flax_train_step`), state donated."""
  return step_caller(*flax_train_step(family, input_shape, batch, reference))


def flax_forward(family: str, input_shape: tuple[int, ...], batch: int,
                 reference: bool = False) -> Callable[[], Any]:
  """One eval-mode forward, `jax.jit` over split state, inputs already on the device."""
  import jax
  from flax import nnx
  model = flax_model(family, input_shape, reference)
  model.eval()
  graphdef, state = nnx.split(model)
  x = jax.device_put(random_batch(batch, input_shape)[0])
  compiled = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)).lower(state, x).compile()
  return lambda: jax.block_until_ready(compiled(state, x))


def _torch_twin(family: str, input_shape: tuple[int, ...]):
  import torch

  from torch_models import create_twin
  torch.set_num_threads(THREADS)
  torch.manual_seed(0)
  return torch, create_twin(family, in_channels=input_shape[-1], num_classes=NUM_CLASSES,
                            width=WIDTH, depth=DEPTH)


def torch_train(family: str, input_shape: tuple[int, ...], batch: int) -> Callable[[], Any]:
  """One PyTorch eager training step of the twin: zero_grad, forward, cross-entropy, backward, AdamW."""
  from efficiency.config import defaults
  torch, model = _torch_twin(family, input_shape)
  model.train()
  config = defaults().train
  optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                weight_decay=config.weight_decay)
  images, labels = random_batch(batch, input_shape)
  x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
  y = torch.from_numpy(labels).long()

  def call():
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
  return call


def torch_forward(family: str, input_shape: tuple[int, ...], batch: int,
                  compiled: bool = False) -> Callable[[], Any]:
  """One PyTorch inference call of the twin under `inference_mode`, eager or `torch.compile`d."""
  torch, model = _torch_twin(family, input_shape)
  model.eval()
  runner = torch.compile(model) if compiled else model
  x = torch.from_numpy(random_batch(batch, input_shape)[0]).permute(0, 3, 1, 2).contiguous()

  def call():
    with torch.inference_mode():
      return runner(x)
  return call


BUILDERS = {'flax_train': flax_train, 'flax_forward': flax_forward,
            'torch_train': torch_train, 'torch_forward': torch_forward}


def _worker(conn, builder: str, kwargs: dict[str, Any], tuned_runtime: bool) -> None:
  if tuned_runtime:
    from efficiency import cpu_runtime
    cpu_runtime.configure()
  try:
    call = BUILDERS[builder](**kwargs)
    for _ in range(3):
      call()
    conn.send(('ready', None))
  except Exception as error:  # noqa: BLE001 - sent to the parent, which records it
    conn.send(('error', f'{type(error).__name__}: {str(error).splitlines()[0][:300]}'))
    return
  while True:
    calls = conn.recv()
    if calls is None:
      return
    times = []
    for _ in range(calls):
      start = time.perf_counter()
      call()
      times.append(time.perf_counter() - start)
    conn.send(('times', times))


class SideProcess:
  """A side built in its own process; `run(n)` returns n per-call times in seconds."""

  def __init__(self, builder: str, *, tuned_runtime: bool = False, **kwargs: Any):
    context = multiprocessing.get_context('spawn')
    self._conn, child = context.Pipe()
    self._process = context.Process(target=_worker, daemon=True,
                                    args=(child, builder, kwargs, tuned_runtime))
    self._process.start()
    status, payload = self._conn.recv()
    self.error = payload if status == 'error' else None

  def run(self, calls: int) -> list[float]:
    self._conn.send(calls)
    return self._conn.recv()[1]

  def close(self) -> None:
    if self._process.is_alive():
      self._conn.send(None)
      self._process.join(timeout=30)


def alternate(sides: dict[str, SideProcess], *, rounds: int = 10, round_s: float = 0.15
              ) -> dict[str, list[list[float]]]:
  """Per-call seconds of each working side, one list per round, the sides taking turns."""
  working = {name: side for name, side in sides.items() if side.error is None}
  calls = {name: max(1, int(round_s / max(min(side.run(2)), 1e-6)))
           for name, side in working.items()}
  samples: dict[str, list[list[float]]] = {name: [] for name in working}
  for _ in range(rounds):
    for name, side in working.items():
      samples[name].append(side.run(calls[name]))
  return samples
