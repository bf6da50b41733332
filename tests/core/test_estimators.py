"""Policy-gradient estimators (pgrun.core.estimators) against the math of notes 03/04.

1. The autodiff gradient of the surrogate `pg_loss` equals the hand-written score-function
   estimator  -(1/N) Σ_i Σ_t ∇log π(a_t^i|s_t^i)·A_t^i,  with, for the softmax-linear policy,
   ∇_θ log π(a|s) = x(s,a) - Σ_b π(b|s) x(s,b)   (written here in numpy).
2. Monte Carlo: on the two-state bandit of notes 03, where ∇J is known exactly
   (`exact_J`), the unbiased estimators average to ∇J, and a biased one (plain batch mean,
   which scales the gradient by 1 - 1/N) is caught by the same test.
3. On the multi-step Particle env, reinforce and reward-to-go agree in expectation and
   reward-to-go has the smaller variance (causality, notes 04).
4. Helpers (leave-one-out mean, normalisation) by hand, and padding steps (valid = False) do
   not touch the gradient.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.estimators import (
    BASELINES,
    WEIGHTS,
    compute_advantages,
    leave_one_out_mean,
    needs_critic,
    next_state_values,
    normalize,
    pg_loss,
    pg_value_and_grad,
    value_loss,
)
from pgrun.core.policies import make_critic, mlp, softmax_linear
from pgrun.core.slices import time_slices
from pgrun.envs import make_env
from pgrun.envs.bandit import RAW_RETURNS, exact_J
from pgrun.lab.gradstats import bootstrap_counts, variance_ratio
from pgrun.rollout.episodes import rollout_episodes

# A fixed, clearly non-uniform bandit policy: π(a1|s1) = σ(1.3) ≈ 0.79, π(a2|s2) = σ(1.0) ≈ 0.73.
# θ is indexed like x(s, a) = one_hot(a) ⊗ [s, 1]: θ[3a + j].
BANDIT_THETA = np.array([0.8, -0.5, 0.3, -0.4, 0.6, 0.2], np.float32)
# Particle: θᵀx(s, a) = d_a · W[x, y, 1] with W pointing roughly at the goal (θ[2j + k]).
PARTICLE_THETA = np.array([-1.0, 0.0, 0.0, -1.0, 0.3, -0.2], np.float32)
# a sharper one for the small fixed batch, so that it holds both terminated and truncated episodes
PARTICLE_THETA_SHARP = np.array([-3.0, 0.0, 0.0, -3.0, 0.3, -0.2], np.float32)

# (name, weight, baseline) of the estimators without a critic
NO_CRITIC = [("reinforce", "total_return", "none"), ("reward_to_go", "reward_to_go", "none"),
             ("baseline", "reward_to_go", "batch_mean"), ("batch_mean_time", "reward_to_go", "batch_mean_time")]


def sample_batch(env, policy, params, seed, num_episodes, max_steps):
    return jax.jit(lambda k: rollout_episodes(env, env.default_params, policy, params, k, num_episodes, max_steps))(
        jax.random.PRNGKey(seed))


def grad_theta(policy, params, batch, adv, entropy_coef=0.0):
    return jax.grad(lambda p: pg_loss(p, policy, batch, adv, entropy_coef)[0])(params)["theta"]


# ---------------------------------------------------------------------------------------------
# numpy references (independent of pgrun)
# ---------------------------------------------------------------------------------------------

def np_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def onehot_state_x(obs, a, num_actions):
    """x(s, a) = one_hot(a) ⊗ [s, 1]."""
    return np.kron(np.eye(num_actions)[a], np.append(obs, 1.0))


def particle_x(obs, a, num_directions=8):
    """x(s, a) = [x, y, 1] ⊗ d_a with d_a the unit vector at angle 2πa/8."""
    ang = 2 * np.pi * a / num_directions
    return np.kron(np.append(obs, 1.0), np.array([np.cos(ang), np.sin(ang)]))


def score_softmax_linear(theta, obs, a, feature, num_actions):
    """∇_θ log π(a|s) = x(s,a) - Σ_b π(b|s) x(s,b)."""
    xs = np.stack([feature(obs, b) for b in range(num_actions)])  # [A, J]
    pi = np_softmax(xs @ theta)
    return xs[a] - pi @ xs


def np_advantages(reward, valid, weight, baseline, gamma):
    """A_t^i for the estimators without a critic; arrays [T, N]; episodes start at t = 0."""
    T, N = reward.shape
    r = np.where(valid, reward, 0.0).astype(np.float64)
    rtg = np.zeros((T, N))
    for i in range(N):
        L = int(valid[:, i].sum())
        for t in range(L):
            rtg[t, i] = sum(gamma ** (k - t) * r[k, i] for k in range(t, L))
    g0 = np.array([sum(gamma**t * r[t, i] for t in range(int(valid[:, i].sum()))) for i in range(N)])
    psi = np.broadcast_to(g0, (T, N)) if weight == "total_return" else rtg
    psi = psi * valid
    if baseline == "none":
        b = np.zeros((T, N))
    elif baseline == "batch_mean":  # leave-one-out mean of the total returns G(τ^j), j ≠ i
        b = np.broadcast_to([(g0.sum() - g0[i]) / (N - 1) for i in range(N)], (T, N))
    elif baseline == "batch_mean_time":  # per time step, leave-one-out mean of Ψ_t^j (0 once ended)
        b = np.stack([[(psi[t].sum() - psi[t, i]) / (N - 1) for i in range(N)] for t in range(T)])
    return (psi - b) * valid


def np_pg_gradient(theta, batch, adv, feature, num_actions):
    """-(1/N) Σ_i Σ_t valid · ∇log π(a_t^i|s_t^i) · A_t^i (gradient of the loss, i.e. of -J̃)."""
    obs, act, valid = np.asarray(batch.obs), np.asarray(batch.action), np.asarray(batch.valid)
    T, N = act.shape
    g = np.zeros_like(theta, dtype=np.float64)
    for t, i in itertools.product(range(T), range(N)):
        if valid[t, i]:
            g += score_softmax_linear(theta, obs[t, i], act[t, i], feature, num_actions) * adv[t, i]
    return -g / N


# ---------------------------------------------------------------------------------------------
# 1. surrogate gradient == hand-written score-function estimator
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bandit():
    env = make_env("Bandit")
    policy = softmax_linear(2, 2)  # default features one_hot(a) ⊗ [s, 1]
    return env, policy, {"theta": jnp.asarray(BANDIT_THETA)}


@pytest.fixture(scope="module")
def bandit_batch(bandit):
    env, policy, params = bandit
    batch = sample_batch(env, policy, params, 7, 32, 1)
    # the batch must exercise both states and both actions
    s = np.asarray(batch.obs)[0].argmax(-1)
    a = np.asarray(batch.action)[0]
    assert len(set(zip(s.tolist(), a.tolist()))) >= 3
    # every bandit episode is one terminating step whose reward is the table entry
    np.testing.assert_array_equal(np.asarray(batch.reward)[0], np.asarray(RAW_RETURNS)[s, a])
    assert np.asarray(batch.terminated).all() and np.asarray(batch.valid).all()
    return batch


def advantages_and_grads(policy, params, batch, gammas):
    """{(name, γ): (adv, ∇_θ loss)} for the critic-free estimators, in one jitted program."""
    @jax.jit
    def f(batch):
        out = {}
        for (name, weight, baseline), gamma in itertools.product(NO_CRITIC, gammas):
            adv = compute_advantages(batch, weight, baseline, jnp.float32(gamma), 0.95).adv
            out[name, gamma] = (adv, grad_theta(policy, params, batch, adv))
        return out

    return jax.tree_util.tree_map(np.asarray, f(batch))


@pytest.fixture(scope="module")
def bandit_auto(bandit, bandit_batch):
    env, policy, params = bandit
    return advantages_and_grads(policy, params, bandit_batch, [0.99])


@pytest.mark.parametrize("name,weight,baseline", NO_CRITIC)
def test_bandit_surrogate_gradient_equals_score_function_formula(bandit_batch, bandit_auto, name, weight, baseline):
    batch = bandit_batch
    reward = np.asarray(batch.reward)
    # hand-computed advantages: one step, so G(τ) = G_0 = r; baseline = mean of the *other* rewards
    if baseline == "none":
        A = reward
    else:
        A = reward - (reward.sum() - reward) / (reward.shape[1] - 1)
    adv, g_auto = bandit_auto[name, 0.99]
    np.testing.assert_allclose(adv, A, rtol=1e-5, atol=1e-5)

    g_hand = np_pg_gradient(BANDIT_THETA, batch, A, lambda o, a: onehot_state_x(o, a, 2), 2)
    np.testing.assert_allclose(g_auto, g_hand, rtol=1e-5, atol=1e-5)
    assert np.abs(g_hand).max() > 0.1  # not a vacuous 0 == 0


@pytest.fixture(scope="module")
def particle():
    env = make_env("Particle")
    policy = softmax_linear(2, 8, env.features)  # policy=softmax_linear policy.features=env
    return env, policy, {"theta": jnp.asarray(PARTICLE_THETA)}


@pytest.fixture(scope="module")
def particle_batch(particle):
    env, policy, _ = particle
    params = {"theta": jnp.asarray(PARTICLE_THETA_SHARP)}
    batch = sample_batch(env, policy, params, 3, 8, 20)
    # both kinds of episode end, hence padding, are present
    assert np.asarray(batch.terminated).any() and np.asarray(batch.truncated).any()
    return params, batch


@pytest.fixture(scope="module")
def particle_auto(particle, particle_batch):
    env, policy, _ = particle
    params, batch = particle_batch
    return advantages_and_grads(policy, params, batch, [1.0, 0.9])


@pytest.mark.parametrize("name,weight,baseline", NO_CRITIC)
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_multistep_surrogate_gradient_equals_score_function_formula(particle_batch, particle_auto, name, weight,
                                                                    baseline, gamma):
    params, batch = particle_batch
    A = np_advantages(np.asarray(batch.reward), np.asarray(batch.valid), weight, baseline, gamma)
    adv, g_auto = particle_auto[name, gamma]
    np.testing.assert_allclose(adv, A, rtol=1e-4, atol=1e-5)

    g_hand = np_pg_gradient(PARTICLE_THETA_SHARP, batch, A, particle_x, 8)
    np.testing.assert_allclose(g_auto, g_hand, rtol=1e-4, atol=1e-5)
    assert np.abs(g_hand).max() > 0.05  # not a vacuous 0 == 0


def test_pg_loss_masks_padding_itself(particle, particle_batch):
    """pg_loss = -(1/N) Σ valid·log π·A even when the advantages it is given are non-zero on padding."""
    env, policy, _ = particle
    params, batch = particle_batch
    valid = np.asarray(batch.valid)
    assert (~valid).any()
    A = np.random.default_rng(0).normal(size=valid.shape).astype(np.float32)
    g_auto = np.asarray(jax.jit(lambda b, a: grad_theta(policy, params, b, a))(batch, jnp.asarray(A)))
    g_hand = np_pg_gradient(PARTICLE_THETA_SHARP, batch, A, particle_x, 8)  # sums valid steps only
    np.testing.assert_allclose(g_auto, g_hand, rtol=1e-4, atol=1e-5)


def test_critic_advantages_match_reference(particle, particle_batch):
    """baseline=value: (G_t - V(s_t))·valid with target G_t; weight=gae: GAE·valid with the
    λ-return target, bootstrapping from V(s_{t+1}) only where the episode was truncated."""
    _, batch = particle_batch
    T, N = batch.reward.shape
    rng = np.random.default_rng(0)
    v_t, v_tp1 = rng.normal(size=(T, N)).astype(np.float32), rng.normal(size=(T, N)).astype(np.float32)
    gamma, lam = 0.9, 0.8
    valid = np.asarray(batch.valid)
    r, term, trunc = (np.asarray(x) for x in (batch.reward, batch.terminated, batch.truncated))
    assert term.any() and trunc.any()  # both kinds of episode end are exercised

    rtg = np_advantages(r, valid, "reward_to_go", "none", gamma)
    out = compute_advantages(batch, "reward_to_go", "value", gamma, lam, jnp.asarray(v_t), jnp.asarray(v_tp1))
    np.testing.assert_allclose(np.asarray(out.adv), (rtg - v_t) * valid, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.critic_target)[valid], rtg[valid], rtol=1e-4, atol=1e-5)

    ref = np.zeros((T, N))
    for i in range(N):
        L = int(valid[:, i].sum())
        delta = [r[t, i] + (0.0 if term[t, i] else gamma * v_tp1[t, i]) - v_t[t, i] for t in range(L)]
        for t in range(L):
            ref[t, i] = sum((gamma * lam) ** (k - t) * delta[k] for k in range(t, L))
    out = compute_advantages(batch, "gae", "value", gamma, lam, jnp.asarray(v_t), jnp.asarray(v_tp1))
    np.testing.assert_allclose(np.asarray(out.adv), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.critic_target)[valid], (ref + v_t)[valid], rtol=1e-4, atol=1e-5)
    assert needs_critic("gae", "none") and needs_critic("reward_to_go", "value")
    assert not needs_critic("total_return", "batch_mean")


def test_entropy_term_of_the_loss(particle, particle_batch):
    """loss = -J̃ - c_H · (mean entropy over valid steps)."""
    env, policy, _ = particle
    params, batch = particle_batch
    adv = compute_advantages(batch, "reward_to_go", "none", 1.0, 0.95).adv
    l0, m0 = pg_loss(params, policy, batch, adv, 0.0)
    l1, m1 = pg_loss(params, policy, batch, adv, 0.5)
    obs, valid = np.asarray(batch.obs), np.asarray(batch.valid)
    ents = [-(p * np.log(p)).sum() for p in
            (np_softmax(np.stack([particle_x(o, b) for b in range(8)]) @ PARTICLE_THETA_SHARP) for o in obs[valid])]
    assert float(m0["entropy"]) == pytest.approx(np.mean(ents), rel=1e-5)
    assert float(l1 - l0) == pytest.approx(-0.5 * np.mean(ents), rel=1e-4)


# ---------------------------------------------------------------------------------------------
# 2. Monte Carlo unbiasedness on the bandit (exact ∇J known)
# ---------------------------------------------------------------------------------------------

def mc_gradients(env, policy, params, n_episodes, n_batches, seed, variants):
    """Ascent directions ĝ = -∇ loss for each variant, over n_batches independent batches (one jit).

    variants: {name: (weight, baseline) | "plain_batch_mean" | "reward_t"}
    """
    max_steps = int(env.max_episode_steps)

    def one(key):
        batch = rollout_episodes(env, env.default_params, policy, params, key, n_episodes, max_steps)
        valid = batch.valid.astype(jnp.float32)
        out = {}
        for name, v in variants.items():
            if v == "plain_batch_mean":  # biased: the batch mean includes the episode's own return
                g0 = jnp.sum(batch.reward, axis=0)
                adv = (g0 - g0.mean())[None, :] * valid
            elif v == "reward_t":  # biased: weight each log π by its own step's reward only
                adv = batch.reward * valid
            else:
                adv = compute_advantages(batch, v[0], v[1], jnp.float32(1.0), 0.95).adv
            out[name] = -grad_theta(policy, params, batch, adv)
        return out

    keys = jax.random.split(jax.random.PRNGKey(seed), n_batches)
    return jax.tree_util.tree_map(np.asarray, jax.jit(jax.vmap(one))(keys))


def mean_and_se(g):
    return g.mean(0), g.std(0, ddof=1) / np.sqrt(g.shape[0])


def within(mean, se, target, k=4.0, eps=1e-4):
    """|mean - target| ≤ k·SE + eps for every component."""
    return np.all(np.abs(mean - target) <= k * se + eps)


@pytest.fixture(scope="module")
def exact_grad(bandit):
    env, policy, params = bandit
    g = np.asarray(jax.grad(lambda p: exact_J(policy.dist, p))(params)["theta"])
    # hand check of one component: ∂J/∂θ_0 (feature "a1, s1-indicator") = ½ π(a1|s1) π(a2|s1) (12 - 7)
    p = 1 / (1 + np.exp(-(0.8 + 0.3 - (-0.4 + 0.2))))
    assert g[0] == pytest.approx(0.5 * p * (1 - p) * 5, rel=1e-5)
    # and the whole vector by the policy-gradient theorem: ∇J = Σ_s p(s) Σ_a π(a|s) ∇log π(a|s) R(s, a)
    feature = lambda o, a: onehot_state_x(o, a, 2)  # noqa: E731
    ref = np.zeros(6)
    for s, a in itertools.product(range(2), range(2)):
        obs = np.eye(2)[s]
        pi = np_softmax(np.stack([feature(obs, b) for b in range(2)]) @ BANDIT_THETA)
        ref += 0.5 * pi[a] * score_softmax_linear(BANDIT_THETA, obs, a, feature, 2) * RAW_RETURNS[s][a]
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-6)
    return g


@pytest.fixture(scope="module")
def bandit_mc16(bandit):
    env, policy, params = bandit
    return mc_gradients(env, policy, params, n_episodes=16, n_batches=4000, seed=1,
                        variants={n: (w, b) for n, w, b in NO_CRITIC})


def test_bandit_estimators_unbiased(bandit_mc16, exact_grad):
    """Mean of 4000 batches × 16 episodes within 4 standard errors (+1e-4) of the exact ∇J for
    reinforce, reward_to_go, baseline (leave-one-out) and batch_mean_time. With 6 components ×
    4 estimators, 4 SE gives a false-alarm rate of about 24 · 6e-5 ≈ 0.2% for a fresh seed; the
    seed is fixed, so the outcome is deterministic."""
    report = {}
    for name, g in bandit_mc16.items():
        m, se = mean_and_se(g)
        report[name] = np.round((m - exact_grad) / se, 2)
        assert se.max() < 0.05 * np.abs(exact_grad).max()  # the test is sharp: SE ≪ |∇J|
        assert within(m, se, exact_grad), f"{name}: z-scores {report[name]}, ∇J {exact_grad}, mean {m}"
    # the leave-one-out baseline reduces variance here: exact tr Cov by enumeration, and the sampled
    # tr Cov of each within 4 standard errors of it (SE of a mean of ‖ĝ - m‖² over the 4000 batches)
    exact_tr = bandit_exact_total_variance(16)
    assert exact_tr["baseline"] < exact_tr["reinforce"]
    for name in ("reinforce", "baseline"):
        g = bandit_mc16[name]
        sq = np.sum((g - g.mean(0)) ** 2, axis=1) * len(g) / (len(g) - 1)
        assert abs(sq.mean() - exact_tr[name]) < 4 * sq.std(ddof=1) / np.sqrt(len(g)), (name, sq.mean(), exact_tr)


def bandit_exact_total_variance(n):
    """tr Cov of one batch's gradient estimate (n episodes) on the bandit at BANDIT_THETA, by enumerating
    the four (s, a) outcomes (numpy; x = ∇log π(a|s), R = R(s, a), E[x] = 0, g = E[xR] = ∇J):

      reinforce:  Cov = (E[xxᵀR²] - ggᵀ) / n
      baseline (b_i = mean of the other n - 1 returns, independent of episode i):
        episode i's term x_i (R_i - b_i) has second moment E[xxᵀR²] - 2 E[R] E[xxᵀR] + E[b²] E[xxᵀ]
        with E[b²] = E[R]² + Var R / (n - 1); two episodes' terms have covariance ggᵀ / (n - 1)²
        (only the products x_i R_i · x_k R_k, through b_i ∋ R_k and b_k ∋ R_i, survive), so
        Cov = (second moment - ggᵀ) / n + ggᵀ / (n (n - 1)).
    """
    feature = lambda o, a: onehot_state_x(o, a, 2)  # noqa: E731
    theta = BANDIT_THETA.astype(np.float64)
    m = {k: np.zeros((6, 6)) for k in ("xx", "xxR", "xxR2")}
    g, mr, mr2 = np.zeros(6), 0.0, 0.0
    for st, a in itertools.product(range(2), range(2)):
        obs = np.eye(2)[st]
        p = 0.5 * np_softmax(np.stack([feature(obs, b) for b in range(2)]) @ theta)[a]
        x, r = score_softmax_linear(theta, obs, a, feature, 2), float(RAW_RETURNS[st][a])
        xx = np.outer(x, x)
        m["xx"] += p * xx
        m["xxR"] += p * xx * r
        m["xxR2"] += p * xx * r * r
        g += p * x * r
        mr += p * r
        mr2 += p * r * r
    gg = np.outer(g, g)
    second = m["xxR2"] - 2 * mr * m["xxR"] + (mr**2 + (mr2 - mr**2) / (n - 1)) * m["xx"]
    return {"reinforce": float(np.trace(m["xxR2"] - gg)) / n,
            "baseline": float(np.trace(second - gg)) / n + float(np.trace(gg)) / (n * (n - 1))}


@pytest.fixture(scope="module")
def bandit_mc2(bandit):
    env, policy, params = bandit
    return mc_gradients(env, policy, params, n_episodes=2, n_batches=20000, seed=2,
                        variants={"loo": ("reward_to_go", "batch_mean"), "plain": "plain_batch_mean"})


def test_biased_plain_batch_mean_is_detected(bandit_mc2, exact_grad):
    """Power of the unbiasedness test: with N = 2 the plain batch mean (own return included)
    has expectation (1 - 1/N)·∇J = ½∇J and fails the same criterion, while the leave-one-out
    mean passes it on the same batches."""
    m, se = mean_and_se(bandit_mc2["loo"])
    assert within(m, se, exact_grad)

    m, se = mean_and_se(bandit_mc2["plain"])
    assert not within(m, se, exact_grad)          # caught
    assert within(m, se, 0.5 * exact_grad)        # and it is exactly the predicted bias
    # projection on ∇J: c = <ĝ, ∇J>/|∇J|² estimates 1 - 1/N = 0.5 (measured 0.505 ± 0.007;
    # leave-one-out: 1.011 ± 0.014)
    c = bandit_mc2["plain"] @ exact_grad / (exact_grad @ exact_grad)
    c_se = c.std(ddof=1) / np.sqrt(len(c))
    assert abs(c.mean() - 0.5) < 4 * c_se and abs(c.mean() - 1.0) > 20 * c_se


# ---------------------------------------------------------------------------------------------
# 3. Multi-step: reinforce vs reward-to-go on Particle (γ = 1, where both estimate ∇J)
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def particle_mc(particle):
    env, policy, params = particle  # 50-step time limit
    return mc_gradients(env, policy, params, n_episodes=8, n_batches=2000, seed=4,
                        variants={"reinforce": ("total_return", "none"),
                                  "reward_to_go": ("reward_to_go", "none"),
                                  "batch_mean_time": ("reward_to_go", "batch_mean_time"),
                                  "reward_t": "reward_t"})


def test_reinforce_and_reward_to_go_agree_in_expectation(particle_mc):
    """Paired test on the same 2000 batches: E[ĝ_reinforce - ĝ_rtg] = 0 (the dropped past-reward
    terms have zero mean, notes 04 "Causality"). Measured |z| ≤ 2.0 per component."""
    for other in ("reward_to_go", "batch_mean_time"):
        d = particle_mc["reinforce"] - particle_mc[other]
        m, se = mean_and_se(d)
        assert within(m, se, 0.0), f"{other}: z = {m / se}"
    # power: weighting log π(a_t|s_t) by r_t alone drops the future rewards and is biased;
    # the same paired criterion rejects it (measured |z| up to ≈ 14)
    d = particle_mc["reinforce"] - particle_mc["reward_t"]
    m, se = mean_and_se(d)
    assert not within(m, se, 0.0)
    # and the estimate is sharp: |∇J| components are far above their standard errors
    m, se = mean_and_se(particle_mc["reinforce"])
    assert np.abs(m).max() > 20 * se.max()


def test_reward_to_go_has_lower_variance_than_reinforce(particle_mc):
    """Total variance tr Cov[ĝ] (per batch of 8 episodes; measured 4.40 reinforce, 2.65 reward_to_go,
    1.95 with the time-wise leave-one-out baseline). Each claim "a has lower variance than b" holds when
    the paired-bootstrap 95% CI of tr Cov(a) / tr Cov(b) (the same 2000 batches resampled for both,
    1000 resamples, seed 0) lies below 1."""
    counts = bootstrap_counts(len(particle_mc["reinforce"]), 1000, seed=0)
    for a, b in (("reward_to_go", "reinforce"), ("batch_mean_time", "reward_to_go")):
        r = variance_ratio(particle_mc[a], particle_mc[b], counts)
        assert r["ci95"][1] < 1.0, (a, b, r)


# ---------------------------------------------------------------------------------------------
# 4. helpers by hand, and validity masks
# ---------------------------------------------------------------------------------------------

def test_leave_one_out_mean_by_hand():
    x = jnp.array([1.0, 2.0, 3.0, 6.0])
    # b_i = mean of the others: (2+3+6)/3, (1+3+6)/3, (1+2+6)/3, (1+2+3)/3
    np.testing.assert_allclose(np.asarray(leave_one_out_mean(x)), [11 / 3, 10 / 3, 3.0, 2.0], rtol=1e-6)
    # along axis 1 of [T, N] (per time step), and along axis 0
    y = jnp.array([[1.0, 2.0, 3.0], [0.0, 4.0, 8.0]])
    np.testing.assert_allclose(np.asarray(leave_one_out_mean(y, axis=1)), [[2.5, 2.0, 1.5], [6.0, 4.0, 2.0]],
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(leave_one_out_mean(y, axis=0)), [[0.0, 4.0, 8.0], [1.0, 2.0, 3.0]])
    # N = 2: each gets the other's value
    np.testing.assert_allclose(np.asarray(leave_one_out_mean(jnp.array([5.0, -1.0]))), [-1.0, 5.0])


def test_normalize_by_hand():
    adv = jnp.array([[1.0, 2.0], [3.0, 100.0]])
    valid = jnp.array([[1.0, 1.0], [1.0, 0.0]])
    # valid values 1, 2, 3: mean 2, population std sqrt(2/3); the padding entry becomes 0
    s = np.sqrt(2 / 3)
    expected = [[-1 / s, 0.0], [1 / s, 0.0]]
    np.testing.assert_allclose(np.asarray(normalize(adv, valid)), expected, rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(3.0, 5.0, size=(30, 4)), jnp.float32)
    v = jnp.asarray(rng.random((30, 4)) < 0.7, jnp.float32)
    n = np.asarray(normalize(a, v))
    vb = np.asarray(v) > 0
    assert abs(n[vb].mean()) < 1e-5 and abs(n[vb].std() - 1.0) < 1e-4 and np.all(n[~vb] == 0)


@pytest.fixture(scope="module")
def cartpole_padded():
    """CartPole episodes of a near-uniform MLP policy with a 60-step limit: most end early,
    so much of the [60, 8] batch is padding."""
    env = make_env("CartPole")
    policy = mlp(4, env.action_space, [16], "tanh")
    params = policy.init(jax.random.PRNGKey(0))
    batch = sample_batch(env, policy, params, 5, 8, 60)
    return env, policy, params, batch


@pytest.mark.parametrize("rows", [8 * 60, 8 * 12, 8 * 5])
def test_time_sliced_gradient_equals_whole_batch_gradient(cartpole_padded, rows):
    """pg_value_and_grad sums slices of the time axis; loss, entropy and every gradient leaf
    equal value_and_grad(pg_loss) on the whole batch (entropy on, so its global mean is used)."""
    env, policy, params, batch = cartpole_padded
    adv = compute_advantages(batch, "reward_to_go", "batch_mean", 0.99, 0.95).adv
    assert time_slices(60, 8, rows) == 60 * 8 // rows
    (l_ref, m_ref), g_ref = jax.jit(lambda p: jax.value_and_grad(pg_loss, has_aux=True)(
        p, policy, batch, adv, 0.1))(params)
    (l, m), g = jax.jit(lambda p: pg_value_and_grad(p, policy, batch, adv, 0.1, rows=rows))(params)
    np.testing.assert_allclose(l, l_ref, rtol=1e-5)
    np.testing.assert_allclose(m["entropy"], m_ref["entropy"], rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert max(float(jnp.abs(x).max()) for x in jax.tree_util.tree_leaves(g_ref)) > 1e-2


@pytest.mark.parametrize("mode,max_steps", [("steps", 9), ("steps", 15), ("episodes", 12)])
def test_next_state_values_equal_the_critic_where_they_are_used(mode, max_steps):
    """V(s_{t+1}) from the shifted v_t plus critic passes at the last row and at truncations
    equals critic(next_obs) at every valid step that bootstraps (not terminated)."""
    from pgrun.rollout.steps import init_env_carry, rollout_steps
    env = make_env("CartPole")
    params = env.params_from_overrides({})
    policy = mlp(4, env.action_space, [16], "tanh")
    theta = policy.init(jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(2)
    if mode == "steps":
        carry = init_env_carry(env, params, key, 6)
        _, batch, _ = rollout_steps(env, params, policy, theta, jax.random.PRNGKey(3), carry, 64, max_steps)
    else:
        batch = rollout_episodes(env, params, policy, theta, key, 6, max_steps)
    w = jax.random.normal(jax.random.PRNGKey(4), (4,))
    critic = lambda o: jnp.tanh(o @ w)  # noqa: E731
    v_t = critic(batch.obs)
    got = np.asarray(next_state_values(critic, batch, v_t, max_steps))
    want = np.asarray(critic(batch.next_obs))
    used = np.asarray(batch.valid & ~batch.terminated)
    trunc = np.asarray(batch.truncated)
    assert trunc.sum() > 0 and (max_steps != 9 or trunc.sum(axis=0).max() >= 2)  # several cuts per column
    np.testing.assert_allclose(got[used], want[used], rtol=1e-6, atol=1e-6)
    assert np.isfinite(got).all()


def test_rollout_batch_structure(cartpole_padded):
    env, policy, params, batch = cartpole_padded
    valid = np.asarray(batch.valid)
    term, trunc, r = np.asarray(batch.terminated), np.asarray(batch.truncated), np.asarray(batch.reward)
    T, N = valid.shape
    lengths = valid.sum(0)
    assert 0.2 < (~valid).mean() < 0.95  # padding is exercised
    for i in range(N):
        L = lengths[i]
        assert valid[:L, i].all() and not valid[L:, i].any()  # valid is a prefix
        ends = np.nonzero(term[:, i] | trunc[:, i])[0]
        assert ends.tolist() == [L - 1]  # exactly one episode end, at the last valid step
        assert not (term[:, i] & trunc[:, i]).any()
        assert trunc[L - 1, i] == (L == T and not term[L - 1, i])
        np.testing.assert_array_equal(r[:L, i], 1.0)  # CartPole: reward 1 on every real step
        np.testing.assert_array_equal(r[L:, i], 0.0)
    # next_obs[t] is obs[t+1] within an episode
    np.testing.assert_array_equal(np.asarray(batch.next_obs)[:-1][valid[1:]], np.asarray(batch.obs)[1:][valid[1:]])
    # log_prob recorded at sampling time is log π(a|s) of the sampling policy
    lp = policy.dist(params, batch.obs).log_prob(batch.action)
    np.testing.assert_allclose(np.asarray(lp)[valid], np.asarray(batch.log_prob)[valid], rtol=1e-5, atol=1e-6)


ALL_COMBOS = [(w, b) for w, b in itertools.product(WEIGHTS, BASELINES)
              if not (w == "gae" and b not in ("none", "value"))]


@pytest.fixture(scope="module")
def masked_grads(cartpole_padded):
    """Gradient of pg_loss (and of the critic loss) for every weight × baseline, normalised or
    not, as one jitted function of the batch."""
    env, policy, params, batch = cartpole_padded
    critic_init, critic_apply = make_critic(4, [16], "tanh")
    phi = critic_init(jax.random.PRNGKey(1))

    @jax.jit
    def grads(batch):
        valid = batch.valid.astype(jnp.float32)
        v_t, v_tp1 = critic_apply(phi, batch.obs), critic_apply(phi, batch.next_obs)
        out = {}
        for w, b in ALL_COMBOS:
            advs = compute_advantages(batch, w, b, jnp.float32(0.99), jnp.float32(0.95), v_t, v_tp1)
            for norm in (False, True):
                adv = normalize(advs.adv, valid) if norm else advs.adv
                loss = lambda p, adv=adv: pg_loss(p, policy, batch, adv, 0.01)[0]  # noqa: E731
                out[f"{w}/{b}/norm={norm}"] = jax.grad(loss)(params)
            out[f"{w}/{b}/critic"] = jax.grad(value_loss)(phi, critic_apply, batch.obs, advs.critic_target, valid)
        return out

    return grads


def _perturb(batch, where, seed):
    """Replace obs, next_obs, action and reward at the steps selected by `where` [T, N]."""
    rng = np.random.default_rng(seed)
    T, N = batch.action.shape
    w = jnp.asarray(where)
    return batch._replace(
        obs=jnp.where(w[..., None], jnp.asarray(rng.normal(0, 3, (T, N, 4)), jnp.float32), batch.obs),
        next_obs=jnp.where(w[..., None], jnp.asarray(rng.normal(0, 3, (T, N, 4)), jnp.float32), batch.next_obs),
        action=jnp.where(w, jnp.asarray(rng.integers(0, 2, (T, N)), batch.action.dtype), batch.action),
        reward=jnp.where(w, jnp.asarray(rng.normal(0, 10, (T, N)), jnp.float32), batch.reward),
    )


def test_padding_steps_do_not_change_the_gradient(cartpole_padded, masked_grads):
    env, policy, params, batch = cartpole_padded
    padding = ~np.asarray(batch.valid)
    g0 = masked_grads(batch)
    g1 = masked_grads(_perturb(batch, padding, seed=0))
    for name in g0:
        for a, b in zip(jax.tree_util.tree_leaves(g0[name]), jax.tree_util.tree_leaves(g1[name])):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-7, err_msg=name)

    # control: the same perturbation on one *valid* step (the first step of episode 0) does change it
    one_valid = np.zeros_like(padding)
    one_valid[0, 0] = True
    g2 = masked_grads(_perturb(batch, one_valid, seed=0))
    flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])  # noqa: E731
    changed = [name for name in g0 if not np.allclose(flat(g0[name]), flat(g2[name]), rtol=1e-4, atol=1e-6)]
    assert len(changed) == len(g0), sorted(set(g0) - set(changed))
