"""Numerics at the extremes (issue 12, section 3): every check sits at the extreme value.

Expected values are derived by hand (closed forms in float64), not read off the code.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.distributions import DiagGaussian
from pgrun.core.offpolicy import LOG_FLOAT32_MAX, log_ess, weight_diagnostics
from pgrun.core.policies import LOG_STD_MAX, LOG_STD_MIN, bounded_log_std, gaussian_linear
from pgrun.core.ppo import LOG_RATIO_MAX, clipped_surrogate, ratio_surrogate
from pgrun.core.trpo import backtracking_line_search
from pgrun.report.importance import normalized_ess, normalized_ess_log, weight_stats

# ---------------------------------------------------------------- DiagGaussian.kl at tiny / huge σ


def kl_closed_form(mp, lsp, mq, lsq) -> float:
    """KL(N(mp, e^{2 lsp}) ‖ N(mq, e^{2 lsq})) in float64 from the textbook formula, exact at
    these magnitudes in float64 (e^{±100} is far inside its range)."""
    vp, vq = math.exp(2 * lsp), math.exp(2 * lsq)
    return lsq - lsp + (vp + (mp - mq) ** 2) / (2 * vq) - 0.5


KL_CASES = [  # (μp, log σp, μq, log σq)
    (0.3, -50.0, 0.3, -50.0),    # σ² = e^-100 underflows float32: the textbook form is 0/0
    (0.0, -50.0, 0.0, -49.0),    # ½(e^-2 - 1) + 1
    (1e-22, -50.0, 0.0, -50.0),  # ½ (1e-22 · e^50)²
    (0.0, -20.0, 0.5, -20.0),    # the lower bound: ½ (0.5 e^20)² = 5.9e16
    (0.0, -20.0, 0.0, 2.0),
    (0.0, 2.0, 0.0, -20.0),      # ½ e^44 = 6.4e18, finite in float32
    (1.0, 0.0, -1.0, 0.0),       # ordinary: (Δμ)²/2 = 2
    (0.5, 0.0, 0.0, 2.0),
    (0.2, 2.0, -0.3, 0.0),
]


@pytest.mark.parametrize("mp,lsp,mq,lsq", KL_CASES)
def test_gaussian_kl_matches_closed_form_at_extreme_log_std(mp, lsp, mq, lsq):
    p = DiagGaussian(jnp.array([mp], jnp.float32), jnp.array([lsp], jnp.float32))
    q = DiagGaussian(jnp.array([mq], jnp.float32), jnp.array([lsq], jnp.float32))
    got = float(p.kl(q))
    want = kl_closed_form(float(np.float32(mp)), lsp, float(np.float32(mq)), lsq)
    assert math.isfinite(got)
    assert got == pytest.approx(want, rel=2e-5, abs=1e-6)


def test_gaussian_kl_sums_over_dimensions_with_mixed_extremes():
    p = DiagGaussian(jnp.array([0.0, 1.0]), jnp.array([-50.0, 0.0]))
    q = DiagGaussian(jnp.array([0.0, 0.0]), jnp.array([-50.0, 0.0]))
    assert float(p.kl(q)) == pytest.approx(0.0 + 0.5, rel=1e-6)


# ---------------------------------------------------------------- the learned log σ is bounded


def test_bounded_log_std_is_identity_with_unit_gradient_inside_the_bounds():
    x = jnp.linspace(-19.5, 1.9, 13)
    np.testing.assert_array_equal(np.asarray(bounded_log_std(x)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(jax.grad(lambda v: jnp.sum(bounded_log_std(v)))(x)), np.ones(13))
    assert (LOG_STD_MIN, LOG_STD_MAX) == (-20.0, 2.0)


@pytest.mark.parametrize("direction", [-1.0, 1.0])
def test_log_std_bound_holds_after_a_forced_update(direction):
    """A huge gradient step on log σ (down: maximise the likelihood of the mean action, which
    wants σ -> 0; up: minimise it) moves the parameter far out; the policy's σ stays at the bound
    and its log-probabilities and KL to the old policy stay finite and match the closed form."""
    policy = gaussian_linear(obs_dim=2, act_dim=1, init_sigma=1.0, learn_sigma=True)
    params = policy.init(jax.random.PRNGKey(0))
    obs = jnp.array([[0.3, -0.2], [1.0, 0.5]])

    def loglik_of_mean(p):
        d = policy.dist(p, obs)
        return jnp.sum(d.log_prob(d.mean))  # = Σ -log σ - ½ log 2π: d/d log σ = -1 per row

    g = jax.grad(loglik_of_mean)(params)
    new = jax.tree_util.tree_map(lambda p, gi: p - direction * 1e4 * gi, params, g)  # SGD, lr 1e4
    assert float(new["log_std"][0]) * direction > 1e3  # the raw parameter is far outside [-20, 2]
    bound = LOG_STD_MAX if direction > 0 else LOG_STD_MIN
    d_new, d_old = policy.dist(new, obs), policy.dist(params, obs)
    assert np.all(np.asarray(d_new.log_std) == bound)
    lp = np.asarray(d_new.log_prob(d_new.mean))
    np.testing.assert_allclose(lp, -bound - 0.5 * math.log(2 * math.pi), rtol=1e-6)
    kl = np.asarray(d_old.kl(d_new))
    want = [kl_closed_form(float(mo), 0.0, float(mn), bound)
            for mo, mn in zip(np.asarray(d_old.mean)[:, 0], np.asarray(d_new.mean)[:, 0])]
    assert np.all(np.isfinite(kl))
    np.testing.assert_allclose(kl, want, rtol=2e-5)


def test_init_sigma_outside_the_bounds_is_a_config_error():
    from pgrun.errors import ConfigError
    from pgrun.train.build import build
    from tests.helpers import make_config

    with pytest.raises(ConfigError, match=r"policy\.init_sigma=10"):
        build(make_config("env=ParticleContinuous", "policy=gaussian_linear", "policy.init_sigma=10"))
    # a fixed σ is not clipped, so any positive init_sigma stays valid
    build(make_config("env=ParticleContinuous", "policy=gaussian_linear", "policy.init_sigma=10",
                      "policy.learn_sigma=false"))


# ---------------------------------------------------------------- PPO's ratio at log ρ = ±100, ±1000


def clipped_surrogate_unsaturated(log_rho, adv, valid, eps):
    """Today's L^CLIP before the saturation: the reference in the sane range."""
    rho = jnp.exp(log_rho)
    s = jnp.minimum(rho * adv, jnp.clip(rho, 1 - eps, 1 + eps) * adv)
    return jnp.sum(s * valid) / jnp.sum(valid)


def test_ppo_gradient_unchanged_in_the_sane_range():
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    log_rho = jax.random.uniform(k1, (7, 5), minval=-3.0, maxval=3.0)
    adv = jax.random.normal(k2, (7, 5))
    valid = jnp.ones((7, 5)).at[5:, 0].set(0.0)
    ours = jax.grad(lambda x: clipped_surrogate(x, adv, valid, 0.2)[0])(log_rho)
    ref = jax.grad(lambda x: clipped_surrogate_unsaturated(x, adv, valid, 0.2))(log_rho)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))
    assert float(clipped_surrogate(log_rho, adv, valid, 0.2)[0]) == float(
        clipped_surrogate_unsaturated(log_rho, adv, valid, 0.2))


@pytest.mark.parametrize("x", [100.0, 1000.0, -100.0, -1000.0])
@pytest.mark.parametrize("a", [2.0, -2.0])
def test_ppo_gradient_finite_and_correct_at_extreme_ratios(x, a):
    """d L^CLIP / d log ρ_0 with one extreme step among n = 2 (the other at log ρ = 0, A = 1).

    Clipped side (A > 0 and ρ > 1+ε, or A < 0 and ρ < 1-ε): 0, the clip's promise.
    Unclipped side: ρ·A/n; at log ρ = -100, -1000 that is e^{log ρ}·A/2 ≈ 0, and at
    +100, +1000 (A < 0) the true ρA is beyond float32: it saturates at e^20·A/2, finite and
    of the true sign."""
    log_rho = jnp.array([x, 0.0])
    adv = jnp.array([a, 1.0])
    valid = jnp.ones(2)
    value, grad = jax.value_and_grad(lambda v: clipped_surrogate(v, adv, valid, 0.2)[0])(log_rho)
    g0 = float(grad[0])
    assert math.isfinite(g0) and math.isfinite(float(value))
    clipped_side = (a > 0 and x > 0) or (a < 0 and x < 0)
    if clipped_side:
        assert g0 == 0.0
    elif x > 0:  # A < 0, ρ huge: pessimistic side, saturated
        assert g0 == pytest.approx(math.exp(LOG_RATIO_MAX) * a / 2, rel=1e-6)
    else:  # A > 0, ρ -> 0: ρ·A/2, below float32's smallest number
        assert g0 == pytest.approx(math.exp(x) * a / 2, abs=1e-30)
    assert float(grad[1]) == pytest.approx(0.5)  # the sane step's gradient is untouched
    assert float(clipped_surrogate(log_rho, adv, valid, 0.2)[1]) == 0.5  # clip fraction: the extreme step


def test_trpo_line_search_rejects_a_candidate_whose_ratio_overflows():
    """TRPO's ratio surrogate is not saturated (differentiated only at ρ = 1): a candidate at
    log ρ = 100 gives L = inf and must be rejected, the next (log ρ = 50, L = e^50) accepted."""
    valid, adv = jnp.ones(1), jnp.ones(1)

    def surrogate(th):
        return ratio_surrogate(10.0 * th[:1], adv, valid)

    theta, ls = backtracking_line_search(surrogate, lambda th: 0.0 * jnp.sum(th), jnp.zeros(1), jnp.array([10.0]),
                                         max_kl=0.01, iters=3, coef=0.5)
    assert bool(ls.accepted) and int(ls.steps) == 2
    assert float(theta[0]) == 5.0 and math.isfinite(float(ls.improvement))


# ---------------------------------------------------------------- ESS in log space


def per_step(log_w):
    """A [1, n] batch of n one-step weights (correction per_decision: one weight per valid step)."""
    lw = jnp.asarray([log_w], jnp.float32)
    return lw, jnp.zeros_like(lw), jnp.ones(lw.shape, bool)


@pytest.mark.parametrize("c", [50.0, -50.0, 100.0, -100.0, 1000.0, -1000.0])
def test_is_ess_of_equal_extreme_weights_is_one(c):
    """n equal weights e^c: ESS = n, ESS/n = 1 (the weights' squares overflow at c > 44 and
    underflow at c < -52 in float32; at |c| = 1000 the weights themselves do)."""
    m = weight_diagnostics(*per_step([c] * 4), "per_decision")
    assert float(m["is_ess"]) == pytest.approx(1.0, rel=1e-6)
    assert float(jnp.exp(log_ess(jnp.full(4, c), jnp.ones(4)))) == pytest.approx(4.0, rel=1e-6)


@pytest.mark.parametrize("c", [50.0, -50.0, 100.0, -100.0, 1000.0, -1000.0])
def test_is_ess_hand_computed_at_extreme_offsets(c):
    # w = e^c (1, 2): ESS = 3² / (1 + 4) = 1.8 of n = 2
    m = weight_diagnostics(*per_step([c, c + math.log(2.0)]), "per_decision")
    assert float(m["is_ess"]) == pytest.approx(0.9, rel=1e-5)
    # one dominant weight among 4: ESS = (1 + 3e^-d)² / (1 + 3e^-2d) ≈ 1 for d ≥ 50
    m = weight_diagnostics(*per_step([c, c - 60.0, c - 70.0, c - 80.0]), "per_decision")
    assert float(m["is_ess"]) == pytest.approx(0.25, rel=1e-6)


def test_is_weight_mean_and_max_in_log_space():
    m = weight_diagnostics(*per_step([50.0, 50.0 + math.log(2.0)]), "per_decision")
    assert float(m["is_weight_mean"]) == pytest.approx(1.5 * math.exp(50.0), rel=1e-5)
    assert float(m["is_weight_max"]) == pytest.approx(2.0 * math.exp(50.0), rel=1e-5)
    m = weight_diagnostics(*per_step([100.0, 0.0]), "per_decision")
    assert math.isinf(float(m["is_weight_max"]))  # e^100 is not a float32: reported as inf, not NaN
    assert float(m["is_ess"]) == pytest.approx(0.5, rel=1e-6)


def test_trajectory_ess_with_huge_episode_log_weights():
    """Three episodes of 4 steps whose log-ratios sum to 100, 100 + log 2, 100 + log 3:
    ESS = (1 + 2 + 3)² / (1 + 4 + 9) = 36/14 of n = 3."""
    log_rho = np.zeros((4, 3), np.float32)
    log_rho[:, :] = 25.0
    log_rho[0, 1] += math.log(2.0)
    log_rho[0, 2] += math.log(3.0)
    cont = np.ones((4, 3), np.float32)
    cont[-1] = 0.0
    m = weight_diagnostics(jnp.asarray(log_rho), jnp.asarray(cont), jnp.ones((4, 3), bool), "trajectory")
    assert float(m["is_ess"]) == pytest.approx(36.0 / 14.0 / 3.0, rel=1e-5)
    assert math.isinf(float(m["is_weight_mean"]))  # 2e^100 is not a float32


@pytest.mark.parametrize("c", [50.0, -50.0, 100.0, -100.0, 1000.0, -1000.0])
def test_report_normalized_ess_log_space(c):
    assert normalized_ess_log(np.full(5, c)) == pytest.approx(1.0)
    assert normalized_ess_log(np.array([c, c + math.log(2.0)])) == pytest.approx(0.9)
    assert normalized_ess_log(np.array([c, c - 800.0, c - 900.0, c - 1000.0])) == pytest.approx(0.25)
    stats = weight_stats(np.array([c, c + math.log(2.0)]))
    assert stats["normalized_ess"] == pytest.approx(0.9)
    # mean 1.5 e^c, variance (ddof 1) of e^c·(1, 2) = ½ e^{2c}: inf / 0 only beyond float64
    if abs(c) < 300:  # e^{2c} inside float64
        assert stats["mean"] == pytest.approx(1.5 * math.exp(c))
        assert stats["var"] == pytest.approx(0.5 * math.exp(2 * c))
    elif c > 0:
        assert math.isinf(stats["mean"]) and math.isinf(stats["var"])
    else:
        assert stats["mean"] == 0.0 and stats["var"] == 0.0


def test_report_normalized_ess_of_underflowing_weights():
    """Every weight 1e-200: their squares underflow float64 (the old 0/0); equal weights, ESS/n = 1."""
    assert normalized_ess(np.full(4, 1e-200)) == pytest.approx(1.0)
    assert normalized_ess(np.array([1e-200, 2e-200])) == pytest.approx(0.9)
    assert normalized_ess(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(1.0)


def test_log_float32_max():
    assert LOG_FLOAT32_MAX == pytest.approx(88.7228, abs=1e-4)
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float32(LOG_FLOAT32_MAX) + np.float32(0.01)))
    assert np.isfinite(np.exp(np.float32(LOG_FLOAT32_MAX) - np.float32(0.01)))
