"""`fusion_fence(x)`: the same array, stored once, which XLA cannot recompute in its readers.

XLA fuses cheap element-wise producers into every consumer, recomputing them
wherever they are read. In the plain CNN's training step this put BatchNorm
and ReLU inside the transposes XLA:CPU adds before each kernel-gradient
convolution (to lay activations out as (C, H, W, N)): strided passes that
also normalise, several times slower than transposing a stored array.
`lax.optimization_barrier` does not prevent this (XLA:CPU expands barriers
before fusion), but XLA does not fuse across a conditional's boundary: passing
the value through a `lax.cond` whose branches both return it unchanged makes
XLA write it once and every reader load it. Measured in benchmarks/RESULTS.md;
the layers use it only where a family's training step was faster with it.

The value is the same bit for bit (both branches return `x`; the predicate
only picks which). It costs no FLOPs per element in either counter (a copy is
data movement; the predicate adds two: a comparison and its conversion to a
branch index), and its gradient is the identity (autodiff passes the
cotangent through the same conditional). Under `vmap` JAX turns the
conditional into a select: the same values, without the fence.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def fusion_fence(x: jax.Array) -> jax.Array:
  """`x` unchanged, materialised once: XLA fuses none of its readers with the ops that made it."""
  if x.size == 0:
    return x
  # Identical branches would be merged away; a copy is kept and reads the same.
  # The copy branch runs only when the first element is -inf or NaN.
  return lax.cond(x.reshape(-1)[0] > -jnp.inf, lambda value: value, jnp.copy, x)
