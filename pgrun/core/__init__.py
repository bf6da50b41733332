"""Pure JAX math of policy gradients: returns, estimators (weight x baseline), distributions,
policies, importance weights, PPO, TRPO, the optimal baseline, minibatches, time slices,
exact gradients and the `Batch` type. No Hydra, no gymnasium envs, no I/O, no config:
functions take arrays, sizes and mode strings; callers vmap."""
