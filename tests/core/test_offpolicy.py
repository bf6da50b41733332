"""Importance-sampled policy gradients that reuse a batch (pgrun.core.offpolicy, pgrun.train.offpolicy).

Checks:
  * weights by hand: trajectory products over episode segments, per-step ratios, truncation
    min(w, c), padding; the effective sample size and log-ratio spread;
  * θ' = θ: one update of every IS estimator (and of PPO) through the whole iteration equals
    the on-policy estimator's update on the same batch;
  * θ' ≠ θ, against exact gradients (vmap over many batches sampled from θ): on the Bandit
    every IS estimator's mean gradient matches ∇J(θ') and ratio-one does not; on the Chain MDP
    the trajectory-level estimator matches, while the notes' timestep-level ratio and
    ratio-one are biased by many standard errors (they ignore the state-distribution shift);
  * config validation and a short run of each IS estimator through `make_train`.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import make_config

from pgrun.core.distributions import Categorical, DiagGaussian
from pgrun.core.estimators import compute_advantages
from pgrun.core.exact import exact_J, tabular_policy
from pgrun.core.offpolicy import importance_weights, is_surrogate, mean_kl, segment_sum, weight_diagnostics
from pgrun.core.policies import softmax_linear
from pgrun.envs import make_env
from pgrun.envs.bandit import exact_J as bandit_exact_J
from pgrun.errors import ConfigError
from pgrun.rollout.episodes import rollout_episodes
from pgrun.train.build import build
from pgrun.train.program import init_seeds, make_train

# ------------------------------------------------------------------ weights by hand


def test_segment_sum_matches_a_loop():
    x = jax.random.normal(jax.random.PRNGKey(0), (9,))
    cont = jnp.array([1, 1, 0, 1, 0, 0, 1, 1, 1], jnp.float32)  # segments [0..2] [3..4] [5] [6..8]
    expect = np.zeros(9)
    for seg in ([0, 1, 2], [3, 4], [5], [6, 7, 8]):
        expect[seg] = float(np.sum(np.asarray(x)[seg]))
    np.testing.assert_allclose(segment_sum(x, cont), expect, rtol=1e-6, atol=1e-6)


def test_importance_weights_by_hand():
    # one column, two segments: steps 0-1 (ends with done at 1), steps 2-3 (cut by the batch)
    log_rho = jnp.log(jnp.array([[2.0], [1.5], [0.5], [4.0]]))
    cont = jnp.array([[1.0], [0.0], [1.0], [1.0]])
    valid = jnp.ones((4, 1), bool)
    traj = importance_weights(log_rho, cont, valid, "trajectory")
    np.testing.assert_allclose(traj[:, 0], [3.0, 3.0, 2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(importance_weights(log_rho, cont, valid, "per_decision")[:, 0], [2, 1.5, .5, 4],
                               rtol=1e-6)
    np.testing.assert_allclose(importance_weights(log_rho, cont, valid, "none")[:, 0], 1.0)
    # truncation min(w, c), the same rule for the episode weight and the per-step ratio
    np.testing.assert_allclose(importance_weights(log_rho, cont, valid, "trajectory", 2.5)[:, 0],
                               [2.5, 2.5, 2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(importance_weights(log_rho, cont, valid, "per_decision", 1.8)[:, 0],
                               [1.8, 1.5, .5, 1.8], rtol=1e-6)
    # padding (episode mode): invalid steps carry no weight and do not enter the product
    pad = jnp.array([[True], [True], [False], [False]])
    ep = importance_weights(jnp.log(jnp.array([[2.0], [3.0], [100.0], [100.0]])),
                            jnp.array([[1.0], [0.0], [1.0], [1.0]]), pad, "trajectory")
    np.testing.assert_allclose(ep[:, 0], [6.0, 6.0, 0.0, 0.0], rtol=1e-6)
    # a huge product is truncated in log space before exp: no overflow
    huge = importance_weights(jnp.full((200, 1), 5.0), jnp.ones((200, 1)), jnp.ones((200, 1), bool),
                              "trajectory", 10.0)
    np.testing.assert_allclose(huge, 10.0, rtol=1e-6)


def test_weight_diagnostics_by_hand():
    # three episodes (columns) with trajectory weights 1, 2, 4 (valid lengths 2, 1, 2)
    log_rho = jnp.log(jnp.array([[1.0, 2.0, 2.0], [1.0, 1.0, 2.0]]))
    valid = jnp.array([[True, True, True], [True, False, True]])
    cont = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    d = weight_diagnostics(log_rho, cont, valid, "trajectory")
    w = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(float(d["is_weight_mean"]), w.mean(), rtol=1e-6)
    np.testing.assert_allclose(float(d["is_weight_max"]), 4.0, rtol=1e-6)
    np.testing.assert_allclose(float(d["is_ess"]), w.sum() ** 2 / (3 * (w**2).sum()), rtol=1e-6)
    lr = np.log([1.0, 2.0, 2.0, 1.0, 2.0])  # the five valid steps
    np.testing.assert_allclose(float(d["log_ratio_std"]), lr.std(), rtol=1e-5)
    p = weight_diagnostics(log_rho, cont, valid, "per_decision")  # per valid step: 1, 2, 2, 1, 2
    np.testing.assert_allclose(float(p["is_ess"]), 8.0**2 / (5 * 14.0), rtol=1e-6)
    np.testing.assert_allclose(float(p["is_weight_mean"]), 8.0 / 5, rtol=1e-6)



def test_mean_kl_is_kl_old_new_in_closed_form():
    """mean_kl(old, new) = KL(π_old ‖ π_new), the direction TRPO's constraint and the KL penalty use
    (notes 04), checked against KLs computed by hand; padded steps do not count.

    Categorical, p = (½, ½) old and q = (0.9, 0.1) new:
      KL(p‖q) = ½ ln(0.5/0.9) + ½ ln(0.5/0.1) = ½ ln(25/9) ≈ 0.5108  (KL(q‖p) ≈ 0.3681).
    Gaussian, old N(0, 1), new N(1, 2²):
      KL(old‖new) = ln(2/1) + (1 + 1²)/(2·4) - ½ = ln 2 - ¼ ≈ 0.4431  (KL(new‖old) = 2 - ln 2 ≈ 1.3069).
    """
    valid = jnp.array([True, True, False])  # the third step is padding, with other distributions
    p = jnp.log(jnp.array([[0.5, 0.5], [0.5, 0.5], [0.01, 0.99]]))
    q = jnp.log(jnp.array([[0.9, 0.1], [0.9, 0.1], [0.99, 0.01]]))
    np.testing.assert_allclose(float(mean_kl(Categorical(p), Categorical(q), valid)), 0.5 * np.log(25 / 9),
                               rtol=1e-5)
    np.testing.assert_allclose(float(mean_kl(Categorical(q), Categorical(p), valid)),
                               0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5), rtol=1e-5)
    old = DiagGaussian(jnp.zeros((3, 1)), jnp.array([[0.0], [0.0], [3.0]]))
    new = DiagGaussian(jnp.array([[1.0], [1.0], [-5.0]]), jnp.array([[np.log(2.0)], [np.log(2.0)], [0.0]]))
    np.testing.assert_allclose(float(mean_kl(old, new, valid)), np.log(2.0) - 0.25, rtol=1e-5)
    np.testing.assert_allclose(float(mean_kl(new, old, valid)), 2.0 - np.log(2.0), rtol=1e-5)
    # two steps with different KLs: the mean over the valid ones, ½(KL₁ + KL₂)
    two = DiagGaussian(jnp.array([[0.0], [2.0], [0.0]]), jnp.zeros((3, 1)))
    np.testing.assert_allclose(float(mean_kl(two, DiagGaussian(jnp.zeros((3, 1)), jnp.zeros((3, 1))), valid)),
                               0.5 * (0.0 + 2.0**2 / 2), rtol=1e-6)


# ------------------------------------------------------------------ θ' = θ: the on-policy gradient


COMMON = ("env=CartPole", "policy=mlp", "policy.hidden=[16]", "episodes_per_iteration=8", "env.max_episode_steps=60",
          "optimizer=sgd", "optimizer.lr=1.0")


def _params_delta(new, old):
    return jax.tree_util.tree_map(lambda a, b: np.asarray(a - b), new.params, old.params)


@pytest.fixture(scope="module")
def on_policy_step():
    """One on-policy iteration of `on_name` (SGD, lr 1): (initial state, batch, parameter change)."""
    cache = {}

    def get(on_name):
        if on_name not in cache:
            on = make_train(make_config(f"estimator={on_name}", *COMMON))
            state, batch = on.sample(on.init(jax.random.PRNGKey(3)))
            new, _ = jax.jit(on.update)(state, batch)
            cache[on_name] = (state, batch, _params_delta(new, state))
        return cache[on_name]

    return get


def _offpolicy_step(overrides, on_state, batch, monkeypatch):
    """One iteration of `overrides` through pgrun.train.offpolicy on the same batch and initial
    parameters (forced there: ratio-one with one epoch would otherwise take program.py's
    on-policy path, which it equals)."""
    with monkeypatch.context() as mp:
        mp.setattr("pgrun.train.program.uses_offpolicy", lambda est: True)
        off = make_train(make_config(*overrides, *COMMON))
    state = off.init(jax.random.PRNGKey(3))
    jax.tree_util.tree_map(np.testing.assert_array_equal, on_state.params, state.params)
    new, m = jax.jit(off.update)(state, batch)
    return _params_delta(new, state), m


@pytest.mark.parametrize("name", ["is_trajectory", "is_per_decision", "is_ratio_one"])
def test_first_step_of_every_is_estimator_is_the_on_policy_step(name, on_policy_step, monkeypatch):
    """epochs=1, minibatches=1: w = 1 at θ' = θ, so the SGD step equals estimator=baseline's."""
    state, batch, d_on = on_policy_step("baseline")
    d_off, m = _offpolicy_step([f"estimator={name}", "estimator.epochs=1"], state, batch, monkeypatch)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=2e-4, atol=1e-6), d_on, d_off)
    assert int(m["updates"]) == 1


def test_first_step_of_ppo_is_the_on_policy_step(on_policy_step, monkeypatch):
    """PPO's clipped surrogate at ρ = 1 has the on-policy gradient; it averages over steps where the
    notes' estimator averages over episodes, so the steps differ by the factor (valid steps)/N."""
    state, batch, d_on = on_policy_step("actor_critic")
    ppo = ["estimator=ppo", "estimator.rollout=episodes", "estimator.epochs=1", "estimator.minibatches=1",
           "estimator.normalize_advantages=false", "estimator.entropy_coef=0", "optimizer=sgd", "optimizer.lr=1.0"]
    d_off, _ = _offpolicy_step(ppo, state, batch, monkeypatch)
    factor = float(np.sum(batch.valid)) / batch.valid.shape[1]
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b * factor, a, rtol=2e-4, atol=1e-6),
                           d_on, d_off)


# ------------------------------------------------------------------ θ' ≠ θ: exact gradients


def _estimates(env, policy, theta_b, theta_t, baseline, n_batches, n_eps, max_steps):
    """Per-batch gradient estimates of ∇J(θ') from batches sampled with θ, for each correction.

    Returns {correction: [n_batches, dim]}, the estimator of `is_surrogate` with
    A_t = G_t - b_t (γ = 1, reward-to-go) and the correction's weights."""
    p = env.default_params
    corrections = ("trajectory", "per_decision", "none")

    def one(key):
        b = rollout_episodes(env, p, policy, {"theta": theta_b}, key, n_eps, max_steps)
        adv = compute_advantages(b, "reward_to_go", baseline, 1.0, 0.95).adv
        cont = 1.0 - (b.terminated | b.truncated).astype(jnp.float32)

        def grad(correction):
            def surrogate(th):
                logp = policy.dist({"theta": th}, b.obs).log_prob(b.action)
                w = importance_weights(jax.lax.stop_gradient(logp - b.log_prob), cont, b.valid, correction)
                return is_surrogate(logp, adv, w, b.valid, n_eps)
            return jax.grad(surrogate)(theta_t)

        return {c: grad(c) for c in corrections}

    g = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(0), n_batches))
    return {k: np.asarray(v, np.float64) for k, v in g.items()}


def _z_scores(g, exact):
    """(mean - exact) / standard error per component; components that are exactly 0 in every
    batch (never-visited states) must be exactly 0 in the exact gradient too."""
    mean, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(len(g))
    seen = se > 1e-9
    np.testing.assert_allclose(mean[~seen], exact[~seen], atol=1e-6)
    return (mean[seen] - exact[seen]) / se[seen]


def test_bandit_is_estimators_match_the_exact_gradient_ratio_one_does_not():
    env = make_env("Bandit")
    policy = softmax_linear(2, 2)
    theta_b = jnp.array([0.3, -0.2, 0.1, -0.3, 0.4, 0.0])
    theta_t = theta_b + jnp.array([0.8, -0.5, 0.3, -0.6, 0.2, 0.7])  # a different target θ'
    exact = np.asarray(jax.grad(lambda th: bandit_exact_J(policy.dist, {"theta": th}))(theta_t))
    g = _estimates(env, policy, theta_b, theta_t, "batch_mean", 600, 16, 1)
    for c in ("trajectory", "per_decision"):  # identical on one-step episodes
        assert np.abs(_z_scores(g[c], exact)).max() < 4.0, c
    assert np.abs(_z_scores(g["none"], exact)).max() > 15.0


def test_chain_trajectory_is_matches_the_exact_gradient_per_step_ratios_are_biased():
    env = make_env("Chain")
    S, A, H = 12, 3, env.max_episode_steps
    policy = softmax_linear(S, A, env.features)  # tabular: logits[s, a] = θ[a·S + s]
    rng = np.random.default_rng(0)
    theta_b = jnp.asarray(rng.normal(0.0, 0.3, A * S), jnp.float32)
    theta_t = theta_b + jnp.asarray(rng.normal(0.0, 0.5, A * S), jnp.float32)
    J = lambda th: exact_J(env.default_params, tabular_policy(th.reshape(A, S).T), 1.0, H)  # noqa: E731
    exact = np.asarray(jax.grad(J)(theta_t))
    g = _estimates(env, policy, theta_b, theta_t, "none", 500, 64, H)
    assert np.abs(_z_scores(g["trajectory"], exact)).max() < 4.5
    assert np.abs(_z_scores(g["per_decision"], exact)).max() > 10.0  # notes' timestep level: biased
    assert np.abs(_z_scores(g["none"], exact)).max() > 10.0          # ratio ≈ 1: biased


# ------------------------------------------------------------------ configs and short runs


@pytest.mark.parametrize("overrides, match", [
    (["estimator=is_trajectory", "estimator.minibatches=3"], "minibatches=3 must divide.*16 episodes"),
    (["estimator=ppo", "estimator.minibatches=7"], "minibatches=7 must divide.*2048 transitions"),
    (["estimator=is_ratio_one", "estimator.clip_weight=2"], "clip_weight=2.*valid choices with clip_weight"),
    (["estimator=trpo", "estimator.epochs=3"], "trust_region.*estimator.epochs=3 is not valid"),
    (["estimator=ppo", "estimator.weight=total_return", "estimator.baseline=none", "estimator.value_coef=null"],
     "rollout=steps.*total_return"),
    (["estimator=baseline", "estimator.value_coef=0.5"], "value_coef=0.5.*uses no critic"),
    (["estimator=ppo", "estimator.correction=nope"], "estimator.correction=nope is not valid; valid choices: none, "
     "trajectory, per_decision, clip"),
    (["estimator=ppo", "estimator.target_kl=0"], "target_kl=0.*> 0, or null"),
])
def test_validate_rejects_with_one_clear_message(overrides, match):
    with pytest.raises(ConfigError, match=match):
        make_config(*overrides)


def test_shipped_estimator_configs_validate():
    for name in ("is_trajectory", "is_per_decision", "is_ratio_one", "ppo", "kl_penalty", "trpo"):
        build(make_config(f"estimator={name}"))  # load's checks, then the env's


def test_trajectory_is_trains_on_the_bandit_with_diagnostics():
    """A short vmapped run of is_trajectory (4 epochs x 2 minibatches of episodes) through
    make_train; the logged diagnostics are consistent and it learns."""
    for name in ("is_trajectory",):
        cfg = make_config(f"estimator={name}", "env=Bandit", "policy=softmax_linear", "iterations=30",
                       "log_every=30", "optimizer.lr=0.1", "estimator.minibatches=2")
        tr = make_train(cfg)
        state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), 2))
        _, m = jax.jit(jax.vmap(tr.chunk))(state)
        m = jax.device_get(m)
        assert m["finite"].all() and (m["updates"] == 8).all()
        assert (m["is_ess"] > 0).all() and (m["is_ess"] <= 1 + 1e-6).all()
        assert (m["is_weight_max"] >= m["is_weight_mean"] - 1e-6).all()
        assert (m["kl_old_new"] >= -1e-6).all()  # KL ≥ 0 up to float32 rounding
        assert np.isnan(m["clip_frac"]).all() and np.isnan(m["trpo_kl"]).all()
        assert m["return_mean"][:, -5:].mean() > m["return_mean"][:, :5].mean() + 0.3, name  # learns
