"""TRPO's pieces (pgrun.core.trpo) and the hard KL constraint in a run.

Checks: conjugate gradient against a dense solve; Fisher-vector products against the dense
Hessian of the mean KL and the analytic Fisher E[∇log π ∇log πᵀ]; the natural step sits on
the quadratic trust-region boundary; the line search never accepts a step with mean KL > δ,
with adversarially large steps, and rejects steps that do not improve the surrogate; a short
vmapped TRPO run logs final KLs ≤ δ on every iteration and seed.
"""


import jax
import jax.numpy as jnp
import numpy as np
from helpers import make_config

from pgrun.core.offpolicy import mean_kl
from pgrun.core.policies import softmax_linear
from pgrun.core.ppo import ratio_surrogate
from pgrun.core.trpo import backtracking_line_search, conjugate_gradient, fisher_vector_product, natural_step, trpo_step
from pgrun.train.program import init_seeds, make_train

MAX_KL = 0.01


def test_conjugate_gradient_solves_an_spd_system():
    m = jax.random.normal(jax.random.PRNGKey(0), (8, 8))
    a = m @ m.T + 0.5 * jnp.eye(8)
    b = jax.random.normal(jax.random.PRNGKey(1), (8,))
    x = conjugate_gradient(lambda v: a @ v, b, 30)
    np.testing.assert_allclose(x, np.linalg.solve(np.asarray(a, np.float64), np.asarray(b, np.float64)),
                               rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(conjugate_gradient(lambda v: a @ v, jnp.zeros(8), 5), 0.0)  # b = 0: no NaN


def toy_problem():
    """A softmax-linear policy on 5 random 3-d observations, 3 actions; a batch of actions drawn
    from it with random advantages. Returns (policy, θ0, surrogate_fn, kl_fn, obs)."""
    policy = softmax_linear(3, 3)
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    obs = jax.random.normal(k[0], (5, 3))
    theta0 = {"theta": 0.5 * jax.random.normal(k[1], (12,))}
    old = policy.dist(theta0, obs)
    action = old.sample(k[2])
    adv = jax.random.normal(k[3], (5,))
    valid = jnp.ones((5,), bool)
    logp_old = old.log_prob(action)

    def surrogate(p):
        return ratio_surrogate(policy.dist(p, obs).log_prob(action) - logp_old, adv, valid)

    def kl(p):
        return mean_kl(old, policy.dist(p, obs), valid)

    return policy, theta0, surrogate, kl, obs


def test_fisher_vector_product_is_the_kl_hessian_and_the_fisher():
    policy, theta0, _, kl, obs = toy_problem()
    flat_kl = lambda th: kl({"theta": th})  # noqa: E731
    th = theta0["theta"]
    damping = 0.1
    fvp = jax.jit(fisher_vector_product(flat_kl, th, damping))
    hess = np.asarray(jax.jit(jax.hessian(flat_kl))(th), np.float64)
    # analytic Fisher: mean_s Σ_a π(a|s) ∇log π(a|s) ∇log π(a|s)ᵀ
    def score(a, s):
        return jax.grad(lambda t: policy.dist({"theta": t}, s).log_prob(a))(th)
    scores = jax.jit(jax.vmap(jax.vmap(score, (0, None)), (None, 0)))(jnp.arange(3), obs)  # [5 s, 3 a, 12]
    pi = np.exp(np.asarray(policy.dist(theta0, obs).log_probs()))
    g = np.asarray(scores, np.float64)
    fisher = np.einsum("sa,sai,saj->ij", pi, g, g) / 5
    np.testing.assert_allclose(hess, fisher, atol=1e-5)
    for j in range(3):
        v = jax.random.normal(jax.random.PRNGKey(10 + j), (12,))
        np.testing.assert_allclose(fvp(v), (hess + damping * np.eye(12)) @ np.asarray(v), rtol=1e-4, atol=1e-5)


def test_natural_step_reaches_the_quadratic_trust_region_boundary():
    _, theta0, surrogate, kl, _ = toy_problem()
    th = theta0["theta"]
    flat_kl = lambda t: kl({"theta": t})  # noqa: E731
    g = jax.grad(lambda t: surrogate({"theta": t}))(th)
    fvp = fisher_vector_product(flat_kl, th, 0.1)
    s = natural_step(g, fvp, MAX_KL, 20)
    np.testing.assert_allclose(0.5 * float(jnp.vdot(s, fvp(s))), MAX_KL, rtol=1e-3)
    dense = np.asarray(jax.hessian(flat_kl)(th)) + 0.1 * np.eye(12)
    direction = np.linalg.solve(dense, np.asarray(g))
    cos = np.dot(direction, s) / np.linalg.norm(direction) / np.linalg.norm(s)
    assert cos > 0.999
    np.testing.assert_array_equal(natural_step(jnp.zeros(12), fvp, MAX_KL, 5), 0.0)  # no gradient: no step


def test_line_search_never_accepts_a_step_above_max_kl():
    _, theta0, surrogate, kl, _ = toy_problem()
    th = theta0["theta"]
    f_l = lambda t: surrogate({"theta": t})  # noqa: E731
    f_kl = lambda t: kl({"theta": t})  # noqa: E731
    s = natural_step(jax.grad(f_l)(th), fisher_vector_product(f_kl, th, 0.1), MAX_KL, 20)
    search = jax.jit(backtracking_line_search, static_argnums=(0, 1, 5))
    # a 5x step (KL ≈ 25δ): backtracking must shrink it until the measured KL is ≤ δ
    new, ls = search(f_l, f_kl, th, 5.0 * s, MAX_KL, 15, 0.8)
    assert bool(ls.accepted) and int(ls.steps) > 1
    assert float(f_kl(new)) <= MAX_KL
    np.testing.assert_allclose(float(ls.kl), float(f_kl(new)), rtol=1e-5)  # the KL it measured
    assert float(f_l(new)) > float(f_l(th))
    # adversarial: 1000x, too few backtracks to get inside: rejected, θ unchanged
    new, ls = search(f_l, f_kl, th, 1000.0 * s, MAX_KL, 5, 0.5)
    assert not bool(ls.accepted) and int(ls.steps) == 5 and float(ls.kl) == 0.0
    np.testing.assert_array_equal(new, th)
    # a step that only worsens the surrogate is never accepted, however small its KL
    new, ls = search(f_l, f_kl, th, -s, MAX_KL, 10, 0.8)
    assert not bool(ls.accepted)
    np.testing.assert_array_equal(new, th)
    # many random large directions: whatever is accepted respects the bound
    for i in range(10):
        d = 3.0 * jax.random.normal(jax.random.PRNGKey(100 + i), th.shape)
        new, ls = search(f_l, f_kl, th, d, MAX_KL, 10, 0.6)
        assert float(f_kl(new)) <= MAX_KL


def test_trpo_step_on_a_pytree():
    _, theta0, surrogate, kl, _ = toy_problem()
    new, ls, _ = trpo_step(surrogate, kl, theta0, MAX_KL, 10, 0.1, 10, 0.8)
    assert bool(ls.accepted) and float(kl(new)) <= MAX_KL and float(surrogate(new)) > float(surrogate(theta0))


def test_trpo_run_keeps_every_accepted_kl_below_max_kl():
    cfg = make_config("estimator=trpo", "env=CartPole", "iterations=12", "log_every=12", "num_envs=8",
                      "num_steps=64", "policy.hidden=[16]", "estimator.critic_hidden=[16]",
                      f"estimator.max_kl={MAX_KL}")
    tr = make_train(cfg)
    state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), 3))
    _, m = jax.jit(jax.vmap(tr.chunk))(state)
    m = jax.device_get(m)
    assert m["finite"].all()
    assert (m["trpo_kl"] <= MAX_KL).all() and (m["kl_old_new"] <= MAX_KL * (1 + 1e-4)).all()
    assert (m["updates"] == 1).mean() > 0.8  # most steps are accepted
    assert ((m["trpo_ls_steps"] >= 1) & (m["trpo_ls_steps"] <= cfg.estimator.backtrack_iters)).all()
    assert (m["trpo_kl"][m["updates"] == 1] > 0.1 * MAX_KL).all()  # accepted steps use the trust region
    assert m["return_mean"][:, -3:].mean() > m["return_mean"][:, :2].mean()
