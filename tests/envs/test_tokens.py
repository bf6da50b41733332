"""env=Tokens: answers by hand, rewards, and the rollout's handling of EOS, the horizon and a time limit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.distributions import Categorical
from pgrun.core.policies import Policy
from pgrun.core.sequences import generated
from pgrun.envs import make_env, reset, step
from pgrun.envs.tokens import answer
from pgrun.rollout.episodes import rollout_episodes


@pytest.mark.parametrize("task, prompt, vocab, want", [
    ("copy", [3, 1, 2], 4, [3, 1, 2]),
    ("reverse", [3, 1, 2], 4, [2, 1, 3]),
    ("sort", [3, 1, 2], 4, [1, 2, 3]),
    ("parity", [3, 1, 1], 4, [1]),
    ("sum_mod", [3, 1, 2], 4, [2]),           # 6 mod 4
    ("add", [4, 7, 3, 5], 10, [0, 8, 2]),     # 47 + 35 = 082
    ("add", [9, 9, 9, 9], 10, [1, 9, 8]),     # 99 + 99 = 198
    ("add", [1, 1, 0, 1], 2, [1, 0, 0]),      # 0b11 + 0b01 = 0b100
])
def test_answers_by_hand(task, prompt, vocab, want):
    np.testing.assert_array_equal(answer(task, jnp.asarray(prompt), vocab), want)


def _play(env, prompt, tokens, max_steps):
    state, _ = reset(env, env.default_params, jax.random.PRNGKey(0))
    state = {**state, "prompt": jnp.asarray(prompt, jnp.int32)}
    out = []
    one_step = jax.jit(lambda s, a, t: step(env, env.default_params, s, a, None, t, max_steps))
    for t, a in enumerate(tokens):
        o = one_step(state, jnp.int32(a), jnp.int32(t))
        out.append((float(o.reward), bool(o.terminated), bool(o.truncated)))
        state = o.state
    return out


def test_exact_match_reward_and_termination():
    env = make_env("Tokens", {"task": "reverse", "prompt_len": 3, "vocab": 4, "horizon": 5})
    EOS = 4
    assert _play(env, [3, 1, 2], [2, 1, 3, EOS], 5) == [(0, False, False)] * 3 + [(1.0, True, False)]
    # a wrong token: no reward, EOS still ends the episode
    assert _play(env, [3, 1, 2], [2, 0, 3, EOS], 5)[-1] == (0.0, True, False)
    # the right tokens without EOS run to the horizon H = 5: too long, wrong, and terminated (not truncated)
    assert _play(env, [3, 1, 2], [2, 1, 3, 0, 0], 5)[-1] == (0.0, True, False)
    # a time limit below H cuts the episode: truncated, not terminated
    assert _play(env, [3, 1, 2], [2, 1], 2)[-1] == (0.0, False, True)


def test_shaping_rewards():
    env = make_env("Tokens", {"task": "copy", "prompt_len": 2, "vocab": 3, "horizon": 3})
    p = env.default_params.replace(format_reward=0.1, token_reward=0.5)
    state, _ = reset(env, p, jax.random.PRNGKey(0))
    state = {**state, "prompt": jnp.asarray([2, 0], jnp.int32)}
    rewards = []
    for t, a in enumerate([2, 1, 3]):  # first right, second wrong, EOS at t = |y| = 2
        o = step(env, p, state, jnp.int32(a), None, t, 3)
        rewards.append(float(o.reward))
        state = o.state
    np.testing.assert_allclose(rewards, [0.1, 0.1, 0.1 + 0.5 * 0.5], atol=1e-6)


def _scripted(vocab: int, prompt_len: int) -> Policy:
    """Emits token 0 until t = 2·x_0 (x_0 the prompt's first token), then EOS, with certainty."""

    def dist(params, obs):
        t = generated(obs, prompt_len, vocab)
        tok = jnp.where(t >= 2 * obs[..., 0].astype(jnp.int32), vocab, 0)
        return Categorical(jnp.where(jnp.arange(vocab + 1) == tok[..., None], 0.0, -1e9))

    return Policy(lambda k: {}, dist, True)


@pytest.fixture(scope="module")
def grouped_batch():
    """8 groups of 4 episodes, V = 3, P = 2, H = 3: x_0 = 0 -> EOS at once (length 1);
    x_0 = 1 -> 0, 0, EOS (length 3, ended by EOS); x_0 = 2 -> 0, 0, 0 (length 3, ended by the horizon)."""
    env = make_env("Tokens", {"task": "copy", "prompt_len": 2, "vocab": 3, "horizon": 3})
    batch = rollout_episodes(env, env.default_params, _scripted(3, 2), {}, jax.random.PRNGKey(3), 32, 3,
                             group_size=4)
    return jax.tree_util.tree_map(np.asarray, batch)


def test_rollout_eos_handling(grouped_batch):
    b = grouped_batch
    x0 = b.obs[0, :, 0].astype(int)
    assert set(x0) == {0, 1, 2}  # all three cases occur with this key
    length = b.valid.sum(axis=0)
    np.testing.assert_array_equal(length, np.where(x0 == 0, 1, 3))
    cols = np.arange(32)
    assert b.terminated[length - 1, cols].all() and not b.truncated.any()
    assert b.terminated.sum() == 32 and b.reward.sum() == 0  # copy: never right
    final = b.next_obs[length - 1, cols, 2:]
    want = {0: [3, 4, 4], 1: [0, 0, 3], 2: [0, 0, 0]}  # EOS = 3, PAD = 4
    np.testing.assert_array_equal(final, [want[x] for x in x0])
    assert not b.valid[length[None, :] <= np.arange(3)[:, None]].any()


def test_groups_share_their_prompt(grouped_batch):
    prompts = grouped_batch.obs[0, :, :2].reshape(8, 4, 2)
    assert (prompts == prompts[:, :1]).all()
    assert len({tuple(p[0]) for p in prompts}) > 1
