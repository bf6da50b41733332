"""The transformer's KV-cache decoder gives the recompute's π(·|s_t): logits at every step, the sampled
tokens of a rollout, the greedy policy's actions (pgrun.core.sequence_policies.transformer_decoder)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pgrun.core.distributions import Categorical
from pgrun.core.sequence_policies import transformer
from pgrun.envs import make_env
from pgrun.rollout.episodes import rollout_episodes
from pgrun.runner.evaluate import greedy

P, V, H = 3, 4, 5
EOS, PAD = V, V + 1
ATOL = 1e-5  # float32 logits of size ~1-5: the two paths differ only in summation order (seen: ~1e-6)


def _random_params(policy, seed: int, scale: float = 0.5):
    """The policy's initial parameters plus N(0, scale²) noise on every entry: logits of order 1 and
    attention far from uniform, so a wrong position or mask changes them visibly."""
    params = policy.init(jax.random.PRNGKey(seed))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 100), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _observations(seed: int, n: int) -> np.ndarray:
    """obs_t, t = 0..H-1, of n episodes as the rollout sees them: random tokens with EOS in most rows
    (at a random step), and an ended episode's observation frozen at its last one.  -> [H, n, P + H]."""
    rng = np.random.default_rng(seed)
    prompt = rng.integers(0, V, (n, P))
    acts = rng.integers(0, V, (n, H))
    eos_at = rng.integers(0, H + 2, n)  # >= H: no EOS
    rows = np.flatnonzero(eos_at < H)
    acts[rows, eos_at[rows]] = EOS
    end = np.where(eos_at < H, eos_at + 1, H)                  # tokens written before the episode stops
    obs = []
    for t in range(H):
        shown = np.minimum(t, end)[:, None]
        gen = np.where(np.arange(H)[None, :] < shown, acts, PAD)
        obs.append(np.concatenate([prompt, gen], axis=1))
    return np.asarray(obs, np.float32)


def test_cached_logits_equal_the_recompute_at_every_step():
    policy = transformer(P, V, H, 16, 2, 2, kv_cache=True)  # two layers: the second attends to cached outputs
    params = _random_params(policy, 2)
    obs = _observations(2, 12)
    assert (obs[-1, :, P:] == EOS).any(axis=1).sum() >= 4  # EOS in several rows, at several steps
    step = jax.jit(policy.decoder.step)
    recompute = jax.jit(lambda o: policy.dist(params, o).logits)
    cache = jax.jit(policy.decoder.init)(params, jnp.asarray(obs[0]))
    for t in range(H):
        dist, cache = step(params, cache, jnp.asarray(obs[t]))
        want = np.asarray(recompute(jnp.asarray(obs[t])))
        assert np.abs(want).max() > 1.0  # logits of order 1: the tolerance is tight
        np.testing.assert_allclose(np.asarray(dist.logits), want, atol=ATOL, rtol=0, err_msg=f"step {t}")


def _tiny_env():
    return make_env("Tokens", {"task": "reverse", "prompt_len": P, "vocab": V, "horizon": H})


def test_a_rollout_samples_the_same_tokens_through_the_cache():
    """Same params and keys: the same tokens, lengths and log-probs (to float32 rounding). The cached
    policy's `dist` is replaced by a uniform one, so the match shows the rollout samples through the cache."""
    env = _tiny_env()
    plain = transformer(P, V, H, 16, 2, 2)
    cached = transformer(P, V, H, 16, 2, 2, kv_cache=True)
    cached = cached._replace(dist=lambda p, o: Categorical(jnp.zeros(o.shape[:-1] + (V + 1,))))
    params = _random_params(plain, 1)

    def roll(policy):
        return jax.jit(lambda k: rollout_episodes(env, env.default_params, policy, params, k, 32, H,
                                                  group_size=4))(jax.random.PRNGKey(11))

    a, b = roll(plain), roll(cached)
    np.testing.assert_array_equal(np.asarray(a.action), np.asarray(b.action))
    np.testing.assert_array_equal(np.asarray(a.valid), np.asarray(b.valid))
    lengths = np.asarray(a.valid).sum(axis=0)
    assert 1 <= lengths.min() < lengths.max() == H  # EOS ended some episodes early, others ran to H
    np.testing.assert_allclose(np.asarray(b.log_prob), np.asarray(a.log_prob), atol=ATOL)
    assert np.asarray(a.log_prob)[np.asarray(a.valid)].std() > 0.1  # not a near-uniform policy


def test_greedy_acts_by_the_argmax_through_the_cache():
    env = _tiny_env()
    policy = transformer(P, V, H, 16, 1, 2, kv_cache=True)
    params = _random_params(policy, 3)
    b = jax.jit(lambda k: rollout_episodes(env, env.default_params, greedy(policy), params, k, 16, H))(
        jax.random.PRNGKey(0))
    want = np.asarray(policy.dist(params, b.obs).logits).argmax(-1)
    valid = np.asarray(b.valid)
    np.testing.assert_array_equal(np.asarray(b.action)[valid], want[valid])
