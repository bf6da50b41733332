"""pgrun: policy-gradient experiment runner on JAX."""

import os

import jax

# XLA's RngBitGenerator keys ("rbg") compile about twice as fast and sample faster on CPU than
# threefry; a given config and seed stay bit-for-bit reproducible. Under vmap, though, rbg draws
# the bits of every run from the batch's first key, so a seed's stream depends on its position
# in the run (seed 3 of `seed=0 num_seeds=8` is not `seed=3 num_seeds=1`). Set
# JAX_DEFAULT_PRNG_IMPL=threefry2x32 for position-independent seeds at the cost of compile time.
if "JAX_DEFAULT_PRNG_IMPL" not in os.environ:
    jax.config.update("jax_default_prng_impl", "rbg")
