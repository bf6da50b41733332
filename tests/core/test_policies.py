"""Action distributions and policy families (pgrun.core.distributions, pgrun.core.policies)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gymnasium import spaces
from scipy import stats

from pgrun.config import load
from pgrun.config.schema import Config, EnvConfig, EstimatorConfig, OptimizerConfig, PolicyConfig
from pgrun.core.distributions import Categorical, DiagGaussian
from pgrun.core.policies import gaussian_linear, make_critic, mlp, onehot_state_features, softmax_linear
from pgrun.envs import ENVS, make_env
from pgrun.errors import ConfigError
from pgrun.train.build import build, make_policy


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Categorical
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cat_logits():
    rng = np.random.default_rng(0)
    return rng.normal(0, 1.5, size=(5, 4)).astype(np.float32), rng.normal(0, 1.5, size=(5, 4)).astype(np.float32)


def test_categorical_log_prob_entropy_kl_vs_scipy(cat_logits):
    lp_np, lq_np = cat_logits
    p, q = np_softmax(lp_np.astype(np.float64)), np_softmax(lq_np.astype(np.float64))
    d, e = Categorical(jnp.asarray(lp_np)), Categorical(jnp.asarray(lq_np))
    for a in range(4):
        lp = np.asarray(d.log_prob(jnp.full((5,), a)))
        ref = [stats.multinomial(1, p[i]).logpmf(np.eye(4)[a]) for i in range(5)]
        np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d.entropy()), stats.entropy(p, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(d.entropy()), -(p * np.log(p)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(d.kl(e)), stats.entropy(p, q, axis=-1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d.kl(d)), 0.0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(d.mode()), p.argmax(-1))


def test_categorical_log_prob_broadcasts_over_batch_dims():
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(3, 2, 5)), jnp.float32)
    a = jnp.array([[0, 4], [2, 2], [1, 3]])
    lp = np.asarray(Categorical(logits).log_prob(a))
    assert lp.shape == (3, 2)
    ref = np.log(np_softmax(np.asarray(logits, np.float64)))
    np.testing.assert_allclose(lp, np.take_along_axis(ref, np.asarray(a)[..., None], -1)[..., 0], rtol=1e-5)


def test_categorical_sample_frequencies():
    logits = jnp.array([1.0, -0.5, 0.0, 2.0])
    p = np_softmax(np.asarray(logits, np.float64))
    n = 40000
    s = np.asarray(jax.jit(lambda k: Categorical(jnp.broadcast_to(logits, (n, 4))).sample(k))(jax.random.PRNGKey(0)))
    freq = np.bincount(s, minlength=4) / n
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n)), (freq, p)


# ---------------------------------------------------------------------------------------------
# DiagGaussian
# ---------------------------------------------------------------------------------------------

MU_P, LS_P = np.array([0.3, -1.0, 2.0]), np.array([0.1, -0.7, 0.4])
MU_Q, LS_Q = np.array([-0.2, 0.5, 1.0]), np.array([-0.3, 0.2, 0.0])


def test_gaussian_log_prob_and_entropy_vs_scipy():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(10, 3))
    d = DiagGaussian(jnp.asarray(MU_P, jnp.float32), jnp.asarray(LS_P, jnp.float32))
    mvn = stats.multivariate_normal(MU_P, np.diag(np.exp(2 * LS_P)))
    np.testing.assert_allclose(np.asarray(d.log_prob(jnp.asarray(a, jnp.float32))), mvn.logpdf(a), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(d.log_prob(jnp.asarray(a, jnp.float32))),
                               stats.norm(MU_P, np.exp(LS_P)).logpdf(a).sum(-1), rtol=1e-5)
    assert float(d.entropy()) == pytest.approx(mvn.entropy(), rel=1e-5)
    np.testing.assert_array_equal(np.asarray(d.mode()), np.asarray(MU_P, np.float32))


def test_log_2pi_constant_has_the_bits_of_jax_log():
    """The Gaussian's log 2π is a NumPy constant (no JAX op at import) with jnp.log(2π)'s float32 bits."""
    from pgrun.core.distributions import _LOG_2PI

    assert np.asarray(_LOG_2PI).dtype == np.float32
    assert np.asarray(_LOG_2PI).view(np.uint32) == np.asarray(jnp.log(2.0 * jnp.pi)).view(np.uint32)


def test_gaussian_log_std_broadcasts_over_batch():
    """A state-independent log σ [D] broadcasts against means [B, D]."""
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(4, 3))
    a = rng.normal(size=(4, 3))
    d = DiagGaussian(jnp.asarray(mean, jnp.float32), jnp.asarray(LS_P, jnp.float32))
    ref = stats.norm(mean, np.exp(LS_P)).logpdf(a).sum(-1)
    np.testing.assert_allclose(np.asarray(d.log_prob(jnp.asarray(a, jnp.float32))), ref, rtol=1e-5)
    assert d.entropy().shape == (4,)
    np.testing.assert_allclose(np.asarray(d.entropy()), stats.multivariate_normal(
        mean[0], np.diag(np.exp(2 * LS_P))).entropy(), rtol=1e-5)


def test_gaussian_kl_closed_form_and_monte_carlo():
    p = DiagGaussian(jnp.asarray(MU_P, jnp.float32), jnp.asarray(LS_P, jnp.float32))
    q = DiagGaussian(jnp.asarray(MU_Q, jnp.float32), jnp.asarray(LS_Q, jnp.float32))
    kl = float(p.kl(q))
    # matrix form: ½[tr(Σq⁻¹Σp) + (μq-μp)ᵀΣq⁻¹(μq-μp) - k + ln(det Σq / det Σp)]
    Sp, Sq = np.diag(np.exp(2 * LS_P)), np.diag(np.exp(2 * LS_Q))
    dm = MU_Q - MU_P
    ref = 0.5 * (np.trace(np.linalg.solve(Sq, Sp)) + dm @ np.linalg.solve(Sq, dm) - 3
                 + np.log(np.linalg.det(Sq) / np.linalg.det(Sp)))
    assert kl == pytest.approx(ref, rel=1e-5)
    # Monte Carlo: E_{a~p}[log p(a) - log q(a)] with samples drawn by p.sample
    n = 200000
    pb = DiagGaussian(jnp.broadcast_to(p.mean, (n, 3)), p.log_std)
    a = pb.sample(jax.random.PRNGKey(4))
    x = np.asarray(pb.log_prob(a) - q.log_prob(a), np.float64)
    assert abs(x.mean() - ref) < 4 * x.std() / np.sqrt(n)
    # the samples themselves have the right moments
    a = np.asarray(a)
    np.testing.assert_allclose(a.mean(0), MU_P, atol=4 * np.exp(LS_P).max() / np.sqrt(n))
    np.testing.assert_allclose(a.std(0), np.exp(LS_P), rtol=0.01)
    assert float(p.kl(p)) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# softmax_linear
# ---------------------------------------------------------------------------------------------

def test_onehot_state_features_by_hand():
    x = np.asarray(onehot_state_features(jnp.array([0.5, -2.0]), jnp.int32(1), 3))
    # one_hot(1) ⊗ [0.5, -2, 1] = [0 0 0 | 0.5 -2 1 | 0 0 0]
    np.testing.assert_array_equal(x, [0, 0, 0, 0.5, -2.0, 1.0, 0, 0, 0])


def test_softmax_linear_shapes_and_uniform_at_zero():
    policy = softmax_linear(4, 3)
    params = policy.init(jax.random.PRNGKey(0))
    assert params["theta"].shape == (3 * (4 + 1),)
    assert np.all(np.asarray(params["theta"]) == 0)
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(7, 5, 4)), jnp.float32)
    d = policy.dist(params, obs)
    assert d.logits.shape == (7, 5, 3)
    np.testing.assert_allclose(np.exp(np.asarray(d.log_probs())), 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(d.entropy()), np.log(3), rtol=1e-6)
    assert policy.discrete


def test_softmax_linear_log_prob_matches_formula():
    """π_θ(a|s) = exp(θᵀx(s,a)) / Σ_b exp(θᵀx(s,b)) with x = one_hot(a) ⊗ [s, 1]."""
    rng = np.random.default_rng(1)
    policy = softmax_linear(3, 4)
    theta = rng.normal(size=16).astype(np.float32)
    obs = rng.normal(size=(6, 3)).astype(np.float32)
    lp = np.asarray(policy.dist({"theta": jnp.asarray(theta)}, jnp.asarray(obs)).log_probs())
    for i in range(6):
        xs = np.stack([np.kron(np.eye(4)[b], np.append(obs[i], 1.0)) for b in range(4)])
        np.testing.assert_allclose(lp[i], np.log(np_softmax(xs @ theta)), rtol=1e-5, atol=1e-6)


def test_softmax_linear_with_env_features():
    env = make_env("Particle")
    policy = make_policy(PolicyConfig(name="softmax_linear", features="env"), env)
    params = policy.init(jax.random.PRNGKey(0))
    assert params["theta"].shape == (6,)  # [x, y, 1] ⊗ d_a
    # θ = -[1, 0, 0, 1, 0, 0]: logit_a = -d_a · (x, y), so the most likely direction points at the goal
    theta = jnp.array([-1.0, 0, 0, -1.0, 0, 0])
    d = policy.dist({"theta": theta}, jnp.array([[1.0, 0.0], [0.0, -1.0], [-1.0, -1.0]]))
    np.testing.assert_array_equal(np.asarray(d.mode()), [4, 2, 1])  # west, north, north-east


# ---------------------------------------------------------------------------------------------
# Gaussian policies
# ---------------------------------------------------------------------------------------------

def _gaussian_loss(policy, params, obs, act):
    return -jnp.mean(policy.dist(params, obs).log_prob(act))


@pytest.fixture(scope="module")
def gaussian_data():
    rng = np.random.default_rng(5)
    obs = jnp.asarray(rng.normal(size=(32, 2)), jnp.float32)
    act = jnp.asarray(rng.normal(2.0, 3.0, size=(32, 2)), jnp.float32)  # actions far from N(0, 1)
    return obs, act


def test_gaussian_linear_mean_and_init():
    policy = gaussian_linear(3, 2, init_sigma=0.5, learn_sigma=True)
    params = policy.init(jax.random.PRNGKey(0))
    assert params["theta"].shape == (4, 2)
    np.testing.assert_allclose(np.asarray(params["log_std"]), np.log(0.5), rtol=1e-6)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4, 2)).astype(np.float32)
    obs = rng.normal(size=(5, 3)).astype(np.float32)
    d = policy.dist({"theta": jnp.asarray(theta), "log_std": params["log_std"]}, jnp.asarray(obs))
    np.testing.assert_allclose(np.asarray(d.mean), np.hstack([obs, np.ones((5, 1))]) @ theta, rtol=1e-5, atol=1e-6)
    assert not policy.discrete


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_gaussian_linear_learn_sigma(gaussian_data, learn_sigma):
    obs, act = gaussian_data
    policy = gaussian_linear(2, 2, init_sigma=1.0, learn_sigma=learn_sigma)
    params = policy.init(jax.random.PRNGKey(0))
    g = jax.grad(lambda p: _gaussian_loss(policy, p, obs, act))(params)
    assert np.abs(np.asarray(g["theta"])).max() > 1e-3
    if learn_sigma:
        assert np.abs(np.asarray(g["log_std"])).min() > 1e-3
    else:
        np.testing.assert_array_equal(np.asarray(g["log_std"]), 0.0)
    # a few Adam steps: σ stays at init_sigma iff it is not learned
    tx = optax.adam(0.1)
    opt = tx.init(params)
    for _ in range(5):
        g = jax.grad(lambda p: _gaussian_loss(policy, p, obs, act))(params)
        u, opt = tx.update(g, opt, params)
        params = optax.apply_updates(params, u)
    moved = np.abs(np.asarray(params["log_std"]) - 0.0).max()
    assert (moved > 0.1) if learn_sigma else (moved == 0.0)


def test_mlp_gaussian_head_learns_log_std(gaussian_data):
    obs, act = gaussian_data
    space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    policy = mlp(2, space, [8, 8], "tanh", init_sigma=0.7)
    params = policy.init(jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(params["log_std"]), np.log(0.7), rtol=1e-6)
    d = policy.dist(params, obs)
    assert isinstance(d, DiagGaussian) and d.mean.shape == (32, 2) and not policy.discrete
    g = jax.grad(lambda p: _gaussian_loss(policy, p, obs, act))(params)
    assert np.abs(np.asarray(g["log_std"])).min() > 1e-3
    # the data have σ ≈ 3 > 0.7: maximum likelihood pushes log σ up
    assert np.all(np.asarray(g["log_std"]) < 0)


def test_mlp_categorical_head_and_critic_shapes():
    policy = mlp(4, spaces.Discrete(3), [8], "relu")
    params = policy.init(jax.random.PRNGKey(0))
    assert "log_std" not in params and policy.discrete
    obs = jnp.ones((6, 5, 4))
    d = policy.dist(params, obs)
    assert isinstance(d, Categorical) and d.logits.shape == (6, 5, 3)
    # small output layer: starts close to uniform
    np.testing.assert_allclose(np.exp(np.asarray(d.log_probs())), 1 / 3, atol=0.05)
    init, apply = make_critic(4, [8, 8], "tanh")
    assert apply(init(jax.random.PRNGKey(1)), obs).shape == (6, 5)


# ---------------------------------------------------------------------------------------------
# make_policy for each family on each env, and the cross-group checks of validate()
# ---------------------------------------------------------------------------------------------

def _valid_families(env):
    if isinstance(env.action_space, spaces.Discrete):
        out = [("softmax_linear", "onehot_state"), ("mlp", "onehot_state")]
        if hasattr(env, "features"):
            out.append(("softmax_linear", "env"))
        return out
    return [("gaussian_linear", "onehot_state"), ("mlp", "onehot_state")]


COMBOS = [(e, f, feat) for e in sorted(ENVS) for f, feat in _valid_families(make_env(e))]


@pytest.mark.parametrize("env_name,family,features", COMBOS)
def test_make_policy_on_env(env_name, family, features):
    env = make_env(env_name)
    cfg = PolicyConfig(name=family, features=features, hidden=[8])
    policy = make_policy(cfg, env)
    params = policy.init(jax.random.PRNGKey(0))
    obs_dim = int(np.prod(env.observation_space.shape))
    obs = jnp.zeros((5, obs_dim))
    d = policy.dist(params, obs)
    a = d.sample(jax.random.PRNGKey(1))
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        assert policy.discrete and isinstance(d, Categorical)
        assert d.logits.shape == (5, space.n) and a.shape == (5,)
        assert np.all((np.asarray(a) >= 0) & (np.asarray(a) < space.n))
    else:
        assert not policy.discrete and isinstance(d, DiagGaussian)
        assert a.shape == (5,) + space.shape
    lp = d.log_prob(a)
    assert lp.shape == (5,) and np.all(np.isfinite(np.asarray(lp)))
    # the log-prob is differentiable in every parameter leaf (none is silently disconnected)
    g = jax.grad(lambda p: jnp.sum(policy.dist(p, obs + 0.3).log_prob(a)))(params)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(g))


def _cfg(env, policy, features="onehot_state"):
    return load(Config(env=EnvConfig(name=env), policy=PolicyConfig(name=policy, features=features),
                       estimator=EstimatorConfig(name="baseline"), optimizer=OptimizerConfig(name="adam")))


@pytest.mark.parametrize("env_name,family,features", list(itertools.product(
    sorted(ENVS), ["softmax_linear", "gaussian_linear", "mlp"], ["onehot_state", "env"])))
def test_validate_accepts_exactly_the_valid_combinations(env_name, family, features):
    cfg = _cfg(env_name, family, features)
    valid = (env_name, family, features) in COMBOS or (family != "softmax_linear" and
                                                      (env_name, family, "onehot_state") in COMBOS)
    if valid:
        build(cfg)
    else:
        with pytest.raises(ConfigError, match="valid choices") as e:
            build(cfg)
        assert f"env={env_name}" in str(e.value) or "policy.features=env" in str(e.value)


@pytest.mark.parametrize("out", [1, 2, 3, 6])
def test_mlp_matches_a_plain_flax_mlp(out):
    """MLP (narrow heads through `narrow_matmul`'s hand-written backward pass) = a plain
    nn.Dense stack: same parameter names and values, outputs, and gradients, vmapped over seeds."""
    import flax.linen as nn

    from pgrun.core.policies import MLP

    class Reference(nn.Module):
        @nn.compact
        def __call__(self, x):
            for h in (32, 16):
                x = nn.tanh(nn.Dense(h, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
            return nn.Dense(out, kernel_init=nn.initializers.orthogonal(0.01))(x)

    ours, ref = MLP((32, 16), out), Reference()
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 7, 5, 4))   # [seeds, T, B, obs]
    p = jax.vmap(lambda k: ours.init(k, x[0, 0, 0]))(keys)
    q = jax.vmap(lambda k: ref.init(k, x[0, 0, 0]))(keys)
    assert jax.tree_util.tree_structure(p) == jax.tree_util.tree_structure(q)
    for a, b in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(q)):
        np.testing.assert_array_equal(a, b)
    w = jax.random.normal(jax.random.PRNGKey(2), (3, 7, 5, out))

    def loss(module, params, xs, ws):
        return jnp.sum(jnp.sin(module.apply(params, xs)) * ws)

    y_ours = jax.vmap(ours.apply)(p, x)
    np.testing.assert_allclose(y_ours, jax.vmap(ref.apply)(q, x), rtol=1e-6, atol=1e-7)
    g_ours = jax.jit(jax.vmap(jax.grad(lambda pp, xs, ws: loss(ours, pp, xs, ws))))(p, x, w)
    g_ref = jax.jit(jax.vmap(jax.grad(lambda pp, xs, ws: loss(ref, pp, xs, ws))))(q, x, w)
    for a, b in zip(jax.tree_util.tree_leaves(g_ours), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert max(float(jnp.abs(g).max()) for g in jax.tree_util.tree_leaves(g_ref)) > 1e-3
