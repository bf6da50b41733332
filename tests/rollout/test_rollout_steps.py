"""Fixed-horizon sampling (pgrun.rollout.steps) and GAE's bootstrapping in steps mode.

Checks: a hand-built [T, B] batch whose GAE(λ) is computed by hand (truncation and the batch's
end bootstrap V(next_obs), termination does not); auto-reset, pre-reset next_obs, the step
counter and the per-episode accumulators across batch boundaries; the episode metrics.
"""

import jax
import jax.numpy as jnp
import numpy as np

from pgrun.core.batch import Batch
from pgrun.core.estimators import compute_advantages
from pgrun.core.policies import make_critic, mlp
from pgrun.envs import make_env
from pgrun.rollout.steps import EpisodeStats, episode_metrics, init_env_carry, initial_episode_metrics, rollout_steps


def hand_batch():
    """Two envs, four steps. Column 0: step 1 terminates, step 3 is cut by the time limit.
    Column 1: one episode running through the whole batch (no flag at all)."""
    f, t = False, True
    return Batch(
        obs=jnp.zeros((4, 2, 1)), action=jnp.zeros((4, 2), jnp.int32), log_prob=jnp.zeros((4, 2)),
        reward=jnp.ones((4, 2)),
        terminated=jnp.array([[f, f], [t, f], [f, f], [f, f]]),
        truncated=jnp.array([[f, f], [f, f], [f, f], [t, f]]),
        valid=jnp.ones((4, 2), bool), next_obs=jnp.zeros((4, 2, 1)))


def test_gae_bootstraps_truncation_and_batch_end_not_termination():
    gamma, lam = 0.9, 0.8
    v_t = jnp.full((4, 2), 0.5)
    # V(next_obs): 3.0 at the terminal step must be ignored; 5.0 at the truncated step and 7.0 at
    # the batch's last step must be used.
    v_tp1 = jnp.array([[2.0, 1.0], [3.0, 1.0], [4.0, 1.0], [5.0, 7.0]])
    advs = compute_advantages(hand_batch(), "gae", "value", gamma, lam, v_t, v_tp1)
    # column 0, by hand: δ0 = 1 + .9·2 - .5 = 2.3; δ1 = 1 - .5 = .5 (terminal: no V);
    # δ2 = 1 + .9·4 - .5 = 4.1; δ3 = 1 + .9·5 - .5 = 5.0 (truncation: bootstraps V = 5).
    # A3 = 5.0; A2 = 4.1 + .72·5.0 = 7.7; A1 = .5 (episode ended: chain cut); A0 = 2.3 + .72·.5 = 2.66
    np.testing.assert_allclose(advs.adv[:, 0], [2.66, 0.5, 7.7, 5.0], rtol=1e-6)
    # column 1: δ = 1 + .9·1 - .5 = 1.4 for t < 3, δ3 = 1 + .9·7 - .5 = 6.8 (the batch's end bootstraps)
    a3 = 6.8
    a2 = 1.4 + 0.72 * a3
    a1 = 1.4 + 0.72 * a2
    a0 = 1.4 + 0.72 * a1
    np.testing.assert_allclose(advs.adv[:, 1], [a0, a1, a2, a3], rtol=1e-6)
    np.testing.assert_allclose(advs.critic_target, advs.adv + v_t, rtol=1e-6)


def _sampled(env_name: str, hidden, num_envs: int, num_steps: int, max_steps: int):
    """(carry, Batch, EpisodeStats) of one steps-mode rollout of a fresh mlp policy (keys 0, 1, 2)."""
    env = make_env(env_name)
    p = env.default_params
    policy = mlp(env.observation_space.shape[0], env.action_space, hidden, "tanh")
    params = policy.init(jax.random.PRNGKey(0))
    carry = init_env_carry(env, p, jax.random.PRNGKey(1), num_envs)
    return jax.jit(lambda c: rollout_steps(env, p, policy, params, jax.random.PRNGKey(2), c, num_steps,
                                           max_steps))(carry)


def test_gae_in_a_sampled_steps_batch_matches_a_python_loop():
    """The same rule on a real steps-mode batch (CartPole, time limit 7 so truncations occur)."""
    _, b, _ = _sampled("CartPole", [8], num_envs=3, num_steps=20, max_steps=7)
    c_init, c_apply = make_critic(4, [8], "tanh")
    phi = c_init(jax.random.PRNGKey(3))
    v_t, v_tp1 = c_apply(phi, b.obs), c_apply(phi, b.next_obs)
    gamma, lam = 0.99, 0.95
    advs = compute_advantages(b, "gae", "value", gamma, lam, v_t, v_tp1)
    r, term, trunc = map(np.asarray, (b.reward, b.terminated, b.truncated))
    v, vn = np.asarray(v_t, np.float64), np.asarray(v_tp1, np.float64)
    assert trunc.any() and not (term & trunc).any()
    expect = np.zeros_like(r, np.float64)
    for i in range(r.shape[1]):
        a = 0.0
        for t in reversed(range(r.shape[0])):
            boot = 0.0 if term[t, i] else gamma * vn[t, i]
            delta = r[t, i] + boot - v[t, i]
            a = delta + (0.0 if (term[t, i] or trunc[t, i]) else gamma * lam * a)
            expect[t, i] = a
    np.testing.assert_allclose(advs.adv, expect, rtol=1e-4, atol=1e-4)


def test_rollout_steps_auto_reset_and_accumulators_across_batches():
    """CartPole with a 5-step limit, 3 envs, batches of 3 steps: episodes span batches."""
    env = make_env("CartPole")
    p = env.default_params
    policy = mlp(4, env.action_space, [8], "tanh")
    params = policy.init(jax.random.PRNGKey(0))
    roll = jax.jit(lambda c, k: rollout_steps(env, p, policy, params, k, c, 3, 5))
    carry = init_env_carry(env, p, jax.random.PRNGKey(1), 3)
    batches, stats = [], []
    for i in range(4):
        carry, b, s = roll(carry, jax.random.PRNGKey(10 + i))
        batches.append(b)
        stats.append(s)
    obs = np.concatenate([np.asarray(b.obs) for b in batches])         # [12, 3, 4]
    nxt = np.concatenate([np.asarray(b.next_obs) for b in batches])
    term = np.concatenate([np.asarray(b.terminated) for b in batches])
    trunc = np.concatenate([np.asarray(b.truncated) for b in batches])
    done = np.concatenate([np.asarray(s.done) for s in stats])
    length = np.concatenate([np.asarray(s.length) for s in stats])
    ret = np.concatenate([np.asarray(s.ret) for s in stats])
    assert all(bool(np.all(b.valid)) for b in batches)
    np.testing.assert_array_equal(done, term | trunc)
    # a random policy rarely falls within 5 steps: the limit cuts at steps 4 and 9 of each env
    assert trunc[4].all() and trunc[9].all() and not (term[:10]).any()
    for t in range(11):
        same = ~done[t]
        np.testing.assert_array_equal(obs[t + 1][same], nxt[t][same])  # no reset: s_{t+1} carries on
        assert (np.abs(obs[t + 1][done[t]]) <= 0.05).all()             # reset: CartPole's start box
        if done[t].any():
            assert not np.allclose(obs[t + 1][done[t]], nxt[t][done[t]])  # next_obs is pre-reset
    np.testing.assert_array_equal(length[done], 5)                      # counted across batches
    np.testing.assert_array_equal(ret[done], 5.0)                       # CartPole pays 1 per step
    assert (length[~done] == 0).all() and (ret[~done] == 0).all()
    np.testing.assert_array_equal(np.asarray(carry.t), 12 - 10)         # 2 steps into the third episode


def test_bandit_in_steps_mode_every_step_is_an_episode():
    _, b, s = _sampled("Bandit", [4], num_envs=8, num_steps=6, max_steps=1)
    assert np.asarray(b.terminated).all() and not np.asarray(b.truncated).any()
    np.testing.assert_array_equal(np.asarray(s.ret), np.asarray(b.reward))
    np.testing.assert_array_equal(np.asarray(s.length), 1)
    m = episode_metrics(s, initial_episode_metrics())
    assert int(m["episodes"]) == 48
    np.testing.assert_allclose(float(m["return_mean"]), float(np.mean(b.reward)), rtol=1e-6)


def test_episode_metrics_by_hand_and_carried_over_empty_batches():
    done = jnp.array([[True, False], [False, False], [False, True]])
    stats = EpisodeStats(done, jnp.where(done, jnp.array([[3.0, 0], [0, 0], [0, 7.0]]), 0.0),
                         jnp.where(done, jnp.array([[3, 0], [0, 0], [0, 9]]), 0))
    m = episode_metrics(stats, initial_episode_metrics())
    assert int(m["episodes"]) == 2
    np.testing.assert_allclose([float(m[k]) for k in ("return_mean", "return_std", "return_min",
                                                       "return_max", "length_mean")], [5.0, 2.0, 3.0, 7.0, 6.0])
    empty = EpisodeStats(jnp.zeros((3, 2), bool), jnp.zeros((3, 2)), jnp.zeros((3, 2), jnp.int32))
    again = episode_metrics(empty, m)
    assert int(again["episodes"]) == 0 and float(again["return_mean"]) == 5.0
    assert np.isnan(float(episode_metrics(empty, initial_episode_metrics())["return_mean"]))


def test_episode_t_counts_from_the_episode_start_across_batches():
    """Batch.episode_t (the t of estimator.gamma_t's γ^t) by the recurrence t_0 = the carry's
    counter, t_{k+1} = 0 after an episode ended at step k, else t_k + 1 — across batch boundaries,
    so an episode that began in an earlier batch keeps counting. Chain (short, random episodes),
    4 envs, batches of 6 steps, time limit 25."""
    env = make_env("Chain")
    p = env.default_params
    policy = mlp(12, env.action_space, [4], "tanh")
    params = policy.init(jax.random.PRNGKey(0))
    roll = jax.jit(lambda c, k: rollout_steps(env, p, policy, params, k, c, 6, 25))
    carry = init_env_carry(env, p, jax.random.PRNGKey(1), 4)
    t = np.zeros(4, int)
    started_before = mid_batch = 0
    for i in range(5):
        np.testing.assert_array_equal(np.asarray(carry.t), t)
        carry, b, _ = roll(carry, jax.random.PRNGKey(20 + i))
        done = np.asarray(b.terminated | b.truncated)
        expect = np.zeros((6, 4), int)
        for k in range(6):
            expect[k] = t
            t = np.where(done[k], 0, t + 1)
        np.testing.assert_array_equal(np.asarray(b.episode_t), expect)
        started_before += int((expect[0] > 0).sum())
        mid_batch += int((expect[1:] == 0).sum())
    assert started_before > 0 and mid_batch > 0  # both cases occurred
