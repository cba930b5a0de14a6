"""The kernel-gradient forms `benchmarks/kernel_gradient_forms.py` times compute XLA's kernel gradient."""

import os
import sys

import jax
import numpy as np
import pytest
from jax import lax

from efficiency.models import native_conv

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'benchmarks'))
import kernel_gradient_forms  # noqa: E402


@pytest.mark.parametrize('stride', [1, 2])
def test_every_form_equals_the_kernel_gradient_of_lax_conv(stride):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 10, 10, 3)).astype(np.float32)
  kernel = rng.normal(size=(3, 3, 3, 16)).astype(np.float32)   # C_out: a native vector width
  pads = tuple(lax.padtype_to_pads((10, 10), (3, 3), (stride, stride), 'SAME'))
  conv = lambda k: lax.conv_general_dilated(x, k, (stride, stride), pads,
                                            dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  dy = rng.normal(size=conv(kernel).shape).astype(np.float32)
  expected = np.asarray(jax.vjp(conv, kernel)[1](dy)[0])
  forms = kernel_gradient_forms.forms([2, 4])
  native = {'native'} if native_conv.status()['available'] else set()
  assert set(forms) == {'xla', 'split 2', 'split 4', 'im2col'} | native
  for name, form in forms.items():
    got = np.asarray(jax.jit(lambda x, k, g, form=form: form(x, k, g, stride, pads))(x, kernel, dy))
    assert got.shape == expected.shape, name
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max(),
                               err_msg=name)
