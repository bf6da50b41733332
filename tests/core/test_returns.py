"""Returns and advantages (pgrun.core.returns) against hand-computed values and a plain-loop reference.

The spec is notes 03/04: G_t = Σ_{k=t}^{end of episode} γ^{k-t} r_k (reward-to-go), G(τ) = Σ_t γ^t r_t,
and GAE(λ): δ_t = r_t + γ·(1 - terminated_t)·V(s_{t+1}) - V(s_t), A_t = Σ_{k=t}^{end} (γλ)^{k-t} δ_k.
A time-limit cut (truncation) still bootstraps from V(s_{t+1}); a termination does not.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.returns import gae, reward_to_go, total_return


def f32(x):
    return jnp.asarray(x, jnp.float32)


# ---------------------------------------------------------------------------------------------
# Independent reference: split the time axis into episodes and sum the series directly
# (O(T²), no recursion), so that it shares no structure with the scan under test.
# ---------------------------------------------------------------------------------------------

def episodes(done):
    """[(start, end_inclusive), ...]; an episode ends at a done step or at the array end."""
    out, start = [], 0
    for t, d in enumerate(done):
        if d:
            out.append((start, t))
            start = t + 1
    if start < len(done):
        out.append((start, len(done) - 1))
    return out


def rtg_reference(r, done, gamma):
    g = np.zeros(len(r))
    for start, end in episodes(done):
        for t in range(start, end + 1):
            g[t] = sum(gamma ** (k - t) * r[k] for k in range(t, end + 1))
    return g


def gae_reference(r, terminated, truncated, v_t, v_tp1, gamma, lam):
    done = np.logical_or(terminated, truncated)
    delta = [r[t] + (0.0 if terminated[t] else gamma * v_tp1[t]) - v_t[t] for t in range(len(r))]
    a = np.zeros(len(r))
    for start, end in episodes(done):
        for t in range(start, end + 1):
            a[t] = sum((gamma * lam) ** (k - t) * delta[k] for k in range(t, end + 1))
    return a


def random_episode_flags(rng, shape):
    """terminated / truncated flags, mutually exclusive, with several episode ends per column."""
    kind = rng.choice(3, size=shape, p=[0.7, 0.15, 0.15])  # 0 running, 1 terminated, 2 truncated
    return kind == 1, kind == 2


# ---------------------------------------------------------------------------------------------
# reward_to_go
# ---------------------------------------------------------------------------------------------

def test_reward_to_go_hand_computed_single_episode():
    # r = [1, 2, 3], γ = 0.5, one episode:
    #   G_2 = 3,  G_1 = 2 + 0.5·3 = 3.5,  G_0 = 1 + 0.5·3.5 = 2.75
    g = reward_to_go(f32([1, 2, 3]), f32([1, 1, 0]), 0.5)
    np.testing.assert_allclose(np.asarray(g), [2.75, 3.5, 3.0], rtol=0, atol=1e-6)


def test_reward_to_go_hand_computed_with_episode_boundary():
    # r = [1, 2, 3, 4], γ = 0.5; the first episode ends after step 1 (continue_1 = 0):
    #   episode A = steps 0-1: G_1 = 2,           G_0 = 1 + 0.5·2 = 2
    #   episode B = steps 2-3: G_3 = 4,           G_2 = 3 + 0.5·4 = 5
    g = reward_to_go(f32([1, 2, 3, 4]), f32([1, 0, 1, 0]), 0.5)
    np.testing.assert_allclose(np.asarray(g), [2.0, 2.0, 5.0, 4.0], rtol=0, atol=1e-6)
    # the boundary matters: without it G_1 = 2 + 0.5·5 = 4.5, G_0 = 1 + 0.5·4.5 = 3.25
    g_no_cut = reward_to_go(f32([1, 2, 3, 4]), f32([1, 1, 1, 0]), 0.5)
    np.testing.assert_allclose(np.asarray(g_no_cut), [3.25, 4.5, 5.0, 4.0], rtol=0, atol=1e-6)


def test_reward_to_go_undiscounted_is_reverse_cumsum():
    r = np.array([3.0, -1.0, 2.0, 0.5, 4.0])
    g = reward_to_go(f32(r), f32([1, 1, 1, 1, 0]), 1.0)
    np.testing.assert_allclose(np.asarray(g), np.cumsum(r[::-1])[::-1], rtol=1e-6)


# one compiled program per function: [T, B] time-major, vmapped over the batch, γ/λ traced
_rtg_batch = jax.jit(jax.vmap(reward_to_go, in_axes=(1, 1, None), out_axes=1))
_gae_batch = jax.jit(jax.vmap(gae, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1))
T_RAND, B_RAND = 40, 16


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_reward_to_go_matches_loop_reference(gamma):
    rng = np.random.default_rng(int(gamma * 100))
    r = rng.normal(size=(T_RAND, B_RAND))
    term, trunc = random_episode_flags(rng, (T_RAND, B_RAND))
    done = term | trunc
    g = np.asarray(_rtg_batch(f32(r), f32(1.0 - done), jnp.float32(gamma)))
    for b in range(B_RAND):
        np.testing.assert_allclose(g[:, b], rtg_reference(r[:, b], done[:, b], gamma), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# GAE
# ---------------------------------------------------------------------------------------------

def _gae(r, terminated, truncated, v_t, v_tp1, gamma, lam):
    terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
    discount = gamma * (1.0 - terminated)
    cont = 1.0 - (terminated | truncated)
    return np.asarray(gae(f32(r), f32(discount), f32(cont), f32(v_t), f32(v_tp1), gamma, lam))


def test_gae_hand_computed_termination_vs_truncation():
    # r = [1, 2, 3], V(s_t) = [0.5, 1, 2], V(s_{t+1}) = [1, 10, 4], γ = λ = 0.5 (γλ = 0.25).
    # Episode A = steps 0-1, episode B = step 2 (truncated by the time limit).
    r, v_t, v_tp1 = [1, 2, 3], [0.5, 1.0, 2.0], [1.0, 10.0, 4.0]

    # (a) A ends by *termination* at step 1: no bootstrap from V(s_2) = 10 there.
    #   δ_0 = 1 + 0.5·1  - 0.5 = 1.0
    #   δ_1 = 2 + 0      - 1.0 = 1.0
    #   δ_2 = 3 + 0.5·4  - 2.0 = 3.0      (truncated: bootstraps)
    #   A_2 = 3.0;  A_1 = 1.0 (chain cut at the episode end);  A_0 = 1.0 + 0.25·1.0 = 1.25
    a = _gae(r, [0, 1, 0], [0, 0, 1], v_t, v_tp1, 0.5, 0.5)
    np.testing.assert_allclose(a, [1.25, 1.0, 3.0], rtol=0, atol=1e-6)

    # (b) A ends by *truncation* at step 1: bootstrap from V(s_2) = 10.
    #   δ_1 = 2 + 0.5·10 - 1.0 = 6.0;  A_1 = 6.0;  A_0 = 1.0 + 0.25·6.0 = 2.5
    a = _gae(r, [0, 0, 0], [0, 1, 1], v_t, v_tp1, 0.5, 0.5)
    np.testing.assert_allclose(a, [2.5, 6.0, 3.0], rtol=0, atol=1e-6)


def test_gae_lambda_limits():
    """λ = 0: A_t = δ_t (TD error).  λ = 1 on terminated episodes: A_t = G_t - V(s_t)."""
    rng = np.random.default_rng(5)
    T, gamma = 30, 0.9
    r, v_t = rng.normal(size=T), rng.normal(size=T)
    term = np.zeros(T, bool)
    term[[6, 17, T - 1]] = True
    trunc = np.zeros(T, bool)
    v_tp1 = np.append(v_t[1:], 0.0)
    v_tp1[term] = rng.normal(size=term.sum()) * 100  # must be ignored at termination

    a0 = _gae(r, term, trunc, v_t, v_tp1, gamma, 0.0)
    delta = r + gamma * v_tp1 * (~term) - v_t
    np.testing.assert_allclose(a0, delta, rtol=1e-5, atol=1e-5)

    a1 = _gae(r, term, trunc, v_t, v_tp1, gamma, 1.0)
    np.testing.assert_allclose(a1, rtg_reference(r, term, gamma) - v_t, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.7)])
def test_gae_matches_loop_reference(gamma, lam):
    rng = np.random.default_rng(int(gamma * 1000 + lam * 10))
    shape = (T_RAND, B_RAND)
    r, v_t, v_tp1 = rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape) * 3
    term, trunc = random_episode_flags(rng, shape)
    a = np.asarray(_gae_batch(f32(r), f32(gamma * (1.0 - term)), f32(1.0 - (term | trunc)), f32(v_t),
                              f32(v_tp1), jnp.float32(gamma), jnp.float32(lam)))
    for b in range(B_RAND):
        ref = gae_reference(r[:, b], term[:, b], trunc[:, b], v_t[:, b], v_tp1[:, b], gamma, lam)
        np.testing.assert_allclose(a[:, b], ref, rtol=1e-4, atol=1e-4)


def test_gae_truncation_bootstraps_and_termination_does_not():
    """Changing V(s_{t+1}) at a terminal step changes nothing; at a truncated step it changes
    A_t by exactly γ·ΔV and A_{t-k} by (γλ)^k·γ·ΔV within the same episode."""
    gamma, lam = 0.9, 0.8
    r = np.array([1.0, 0.5, -1.0, 2.0, 0.0])
    v_t = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    v_tp1 = np.array([0.2, 0.3, 0.4, 0.5, 0.6])
    bumped = v_tp1.copy()
    bumped[2] += 10.0

    term, trunc = [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]
    np.testing.assert_array_equal(_gae(r, term, trunc, v_t, v_tp1, gamma, lam),
                                  _gae(r, term, trunc, v_t, bumped, gamma, lam))

    term, trunc = [0, 0, 0, 0, 0], [0, 0, 1, 0, 1]
    d = _gae(r, term, trunc, v_t, bumped, gamma, lam) - _gae(r, term, trunc, v_t, v_tp1, gamma, lam)
    expected = np.array([(gamma * lam) ** 2, gamma * lam, 1.0, 0.0, 0.0]) * gamma * 10.0
    np.testing.assert_allclose(d, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# total_return
# ---------------------------------------------------------------------------------------------

def test_total_return_hand_computed():
    # r = [1, 2, 3, 4], valid = [T, T, T, F] (step 3 is padding), γ = 0.5:
    #   G(τ) = 1 + 0.5·2 + 0.25·3 = 2.75   (the padding reward 4 is ignored)
    g = total_return(f32([1, 2, 3, 4]), jnp.array([True, True, True, False]), 0.5)
    assert float(g) == pytest.approx(2.75, abs=1e-6)
    assert float(total_return(f32([1, 2, 3, 4]), jnp.ones(4, bool), 1.0)) == pytest.approx(10.0)
    assert float(total_return(f32([1, 2, 3, 4]), jnp.zeros(4, bool), 0.9)) == 0.0


def test_total_return_matches_loop_and_reward_to_go_at_t0():
    rng = np.random.default_rng(11)
    for gamma in (0.5, 0.97, 1.0):
        T = 20
        r = rng.normal(size=T)
        length = int(rng.integers(1, T + 1))
        valid = np.arange(T) < length
        ref = sum(gamma**t * r[t] for t in range(length))
        g = total_return(f32(r), jnp.asarray(valid), gamma)
        assert float(g) == pytest.approx(ref, rel=1e-5, abs=1e-5)
        # G(τ) is the reward-to-go at t = 0 of the same episode
        done = np.zeros(T, bool)
        done[length - 1] = True
        g0 = reward_to_go(f32(np.where(valid, r, 0.0)), f32(1.0 - done), gamma)[0]
        assert float(g0) == pytest.approx(ref, rel=1e-5, abs=1e-5)
