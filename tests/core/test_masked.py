"""masked_mean: the mean over valid steps, by hand."""

import jax.numpy as jnp
import numpy as np

from pgrun.core.masked import masked_mean


def test_masked_mean_by_hand():
    x = jnp.array([[1.0, 2.0], [3.0, 100.0]])
    valid = jnp.array([[True, True], [True, False]])
    assert float(masked_mean(x, valid)) == 2.0  # (1 + 2 + 3) / 3: the padded 100 is not seen
    assert float(masked_mean(x, valid.astype(jnp.float32))) == 2.0  # 0/1 floats as well
    assert float(masked_mean(x, jnp.zeros_like(valid))) == 0.0  # all padding: 0, not NaN
    np.testing.assert_allclose(float(masked_mean(x, jnp.ones_like(valid))), 26.5)
