"""HostSampler's Batch from a gymnasium vector env: whole episodes, masks, pre-reset next_obs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.config.schema import PolicyConfig
from pgrun.envs import make_env
from pgrun.rollout.host import HostSampler
from pgrun.train.build import make_policy
from pgrun.train.program import init_seeds

POLICY = PolicyConfig(name="softmax_linear", features="onehot_state", hidden=[8], activation="tanh",
                      init_sigma=1.0, learn_sigma=True)


def collect(seeds, episodes, max_steps, gym_id="CartPole-v1", policy_cfg=POLICY):
    env = make_env(f"gym:{gym_id}")
    policy = make_policy(policy_cfg, env)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    params = init_seeds(policy.init, keys)
    sampler = HostSampler(env, policy, seeds, episodes, max_steps, {})
    try:
        return [sampler.collect(params, keys) for _ in range(2)], policy, params
    finally:
        sampler.close()


@pytest.mark.parametrize("max_steps", [500, 12])
def test_whole_episodes_masks_and_next_obs(max_steps):
    batches, policy, params = collect([0, 1], 6, max_steps)
    for b in batches:
        S, T, B = b.valid.shape
        assert (S, T, B) == (2, max_steps, 6) and b.obs.shape == (2, max_steps, 6, 4)
        length = b.valid.sum(axis=1)                                   # [S, B]
        assert (length >= 1).all()
        prefix = np.arange(T)[None, :, None] < length[:, None, :]
        np.testing.assert_array_equal(b.valid, prefix)                 # valid is a prefix
        done = b.terminated | b.truncated
        assert (done.sum(axis=1) == 1).all()                           # one end per episode ...
        last = np.take_along_axis(done, (length - 1)[:, None, :], axis=1)[:, 0]
        assert last.all()                                              # ... at its last valid step
        assert not (b.terminated & b.truncated).any()
        assert (b.truncated.any(axis=1) == (length == max_steps)).all()  # CartPole: cut only by T
        np.testing.assert_array_equal(b.reward.sum(axis=1), length)    # +1 per step
        inner = b.valid[:, 1:] & ~done[:, :-1]
        np.testing.assert_array_equal(b.next_obs[:, :-1][inner], b.obs[:, 1:][inner])
        x, th = b.next_obs[..., 0][b.terminated], b.next_obs[..., 2][b.terminated]
        assert ((np.abs(x) > 2.4) | (np.abs(th) > 0.2095)).all()       # pre-reset final obs
        assert not b.obs[~b.valid].any() and not b.reward[~b.valid].any()
        lp = jax.vmap(lambda p, o, a: policy.dist(p, o).log_prob(a))(params, b.obs, b.action)
        np.testing.assert_allclose(np.where(b.valid, lp, 0), b.log_prob, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(batches[0].obs, batches[1].obs)           # fresh episodes each call


def test_env_reset_seeds_come_from_the_run_seed():
    (two, _), _, _ = collect([3, 4], 3, 5)
    (one, _), _, _ = collect([4], 3, 5)
    np.testing.assert_array_equal(two.obs[1, 0], one.obs[0, 0])  # same initial states for seed 4
    (other, _), _, _ = collect([5], 3, 5)
    assert not np.array_equal(other.obs[0, 0], one.obs[0, 0])


def test_box_actions_are_sampled_unclipped():
    cfg = dataclasses.replace(POLICY, name="gaussian_linear", init_sigma=3.0)
    (b, _), _, _ = collect([0], 2, 20, "Pendulum-v1", cfg)
    assert b.action.shape == (1, 20, 2, 1) and b.valid.all() and b.truncated[:, -1].all()
    assert np.abs(b.action).max() > 2.0  # stored as sampled; the env got them clipped to [-2, 2]
