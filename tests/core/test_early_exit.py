"""Loops that stop when no run of the (vmapped) program needs them: the episode rollout and
the time-sliced policy gradient. Stopping early must not change any run's valid data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.batching import any_in_program
from pgrun.core.estimators import compute_advantages, pg_loss, pg_value_and_grad
from pgrun.core.policies import mlp
from pgrun.envs import make_env
from pgrun.rollout.episodes import rollout_episodes

MAX_STEPS, N, CHUNK = 200, 6, 16


def test_any_in_program_reduces_over_every_vmapped_axis():
    x = jnp.array([[False, False], [False, True]])
    assert not any_in_program(x[0]) and any_in_program(x[1])
    # vmapped: one answer for the whole program, so row 0 (all False) sees row 1's True
    assert jax.vmap(any_in_program)(x).tolist() == [True, True]
    assert jax.vmap(jax.vmap(any_in_program))(x[:, :, None]).tolist() == [[True, True]] * 2
    assert jax.vmap(any_in_program)(jnp.zeros((3, 4), bool)).tolist() == [False] * 3


@pytest.fixture(scope="module")
def cartpole():
    env = make_env("CartPole")
    policy = mlp(4, env.action_space, [16], "tanh")
    params = policy.init(jax.random.PRNGKey(0))
    return env, policy, params


def roll(cartpole, chunk, seeds):
    env, policy, params = cartpole
    f = lambda k: rollout_episodes(env, env.default_params, policy, params, k, N, MAX_STEPS, chunk)  # noqa: E731
    return jax.jit(jax.vmap(f))(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds)))


def test_rollout_stops_after_the_chunk_where_the_last_episode_ends(cartpole):
    """A random CartPole policy ends every episode long before the limit: chunks after the one
    holding the program's last step never ran (all-zero rows), and every valid step is the
    one a single full-length chunk (the plain scan) samples."""
    early, full = roll(cartpole, CHUNK, [0, 1]), roll(cartpole, MAX_STEPS, [0, 1])
    valid = np.asarray(full.valid)
    np.testing.assert_array_equal(np.asarray(early.valid), valid)
    last = int(valid.sum(axis=1).max())  # longest episode of both runs
    ran = -(-last // CHUNK) * CHUNK
    assert last < MAX_STEPS // 2 and ran < MAX_STEPS
    for name in ("obs", "action", "log_prob", "reward", "next_obs", "terminated", "truncated"):
        a, b = np.asarray(getattr(early, name)), np.asarray(getattr(full, name))
        np.testing.assert_array_equal(a[valid], b[valid], err_msg=name)
        assert not np.any(a[:, ran:]), name  # never run: both runs stopped at the same chunk
        # the chunks that ran hold the frozen env's padding, as the plain scan does
        np.testing.assert_array_equal(a[:, :ran], b[:, :ran], err_msg=name)
    assert np.isfinite(np.asarray(full.obs)).all()


def test_each_run_gets_its_own_episodes_whatever_the_other_runs(cartpole):
    """Run 0 alone and run 0 next to another seed: the same valid steps (the loop runs to the
    longest episode of the program, which only adds padding)."""
    alone, together = roll(cartpole, CHUNK, [3]), roll(cartpole, CHUNK, [3, 4])
    valid = np.asarray(alone.valid[0])
    np.testing.assert_array_equal(np.asarray(together.valid[0]), valid)
    for name in ("obs", "action", "log_prob", "reward", "next_obs"):
        np.testing.assert_array_equal(np.asarray(getattr(together, name))[0][valid],
                                      np.asarray(getattr(alone, name))[0][valid], err_msg=name)


def test_vmapped_rollout_loop_counter_is_one_for_the_program(cartpole):
    """The loop condition is one bool for the program, so vmap keeps the chunk counter a
    scalar: every run writes the same rows, and the loop needs no per-run selects (a
    per-run condition would batch the counter and turn each write into a per-run scatter)."""
    env, policy, params = cartpole
    f = lambda k: rollout_episodes(env, env.default_params, policy, params, k, N, MAX_STEPS, CHUNK)  # noqa: E731
    jaxpr = jax.make_jaxpr(jax.vmap(f))(jax.vmap(jax.random.PRNGKey)(jnp.arange(2)))
    loops = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "while"]
    assert len(loops) == 1
    assert loops[0].outvars[0].aval.shape == ()  # the chunk counter


def test_sliced_gradient_skips_all_padding_slices(cartpole):
    """NaN observations in the slices after the last valid step would make any gradient that
    touched them NaN; the loop never reaches them, and the gradient equals the whole-batch one
    computed without them. Vmapped over two runs, it stops after the longer run's last slice."""
    env, policy, params = cartpole
    batch = jax.tree_util.tree_map(lambda x: x[0], roll(cartpole, CHUNK, [5]))
    adv = compute_advantages(batch, "reward_to_go", "batch_mean", 0.99, 0.95).adv
    rows = 20 * N  # slices of 20 steps
    last = int(np.asarray(batch.valid).sum(axis=0).max())
    cut = -(-last // 20) * 20
    assert cut < MAX_STEPS
    poisoned = batch._replace(obs=batch.obs.at[cut:].set(jnp.nan))
    (l, m), g = jax.jit(lambda p: pg_value_and_grad(p, policy, poisoned, adv, 0.1, rows=rows))(params)
    (l_ref, m_ref), g_ref = jax.value_and_grad(pg_loss, has_aux=True)(params, policy, batch, adv, 0.1)
    np.testing.assert_allclose(l, l_ref, rtol=1e-5)
    np.testing.assert_allclose(m["entropy"], m_ref["entropy"], rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref)):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

    # two runs: run 1's episodes all end by step 20, run 0's go on; poison only past run 0's end
    short = batch._replace(valid=batch.valid.at[20:].set(False))
    pair = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), poisoned, short)
    pair_adv = jnp.stack([adv, jnp.where(short.valid, adv, 0.0)])
    (lp, _), gp = jax.jit(jax.vmap(lambda b, a: pg_value_and_grad(params, policy, b, a, 0.1, rows=rows)))(
        pair, pair_adv)
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(gp))
    np.testing.assert_allclose(lp[0], l_ref, rtol=1e-5)
