"""Token sequences as an MDP (the lecture's language-model example), and its exact J and ∇J.

Layout. A vocabulary of V answer tokens 0..V-1, EOS = V and PAD = V + 1. An episode is one
prompt x (P tokens) and a completion o = (o_0, o_1, ...) of at most H tokens: state
s_t = (x, o_<t), action a_t = o_t ∈ {0..V} (A = V + 1 actions), the episode ends after EOS or
after H tokens. The observation of s_t is the float vector

    obs_t = [x_0 .. x_{P-1}, o_0 .. o_{t-1}, PAD .. PAD]      [P + H]

(float32 like every pgrun observation; the token ids are exact small integers). A policy
reads the number of generated tokens t from the PADs (`generated`) and predicts o_t from
position P + t - 1 (`next_position`), so causal models see exactly (x, o_<t).

Exact J. Over M prompts (uniform, as the env draws them) and all K = A^H action strings
a ∈ {0..V}^H, an episode "ends" at e(a) = (index of the first EOS) + 1, or H. The tokens
after e(a) are never sampled; giving each of them the weight 1/A makes the strings' weights
a distribution whose marginal on the first e(a) tokens is the episode's law, so

    J(θ) = (1/M) Σ_x Σ_a  Π_{t<e(a)} π_θ(a_t | x, a_<t) · A^{-(H - e(a))} · R(x, a)

is exact, and `jax.grad` of it is the exact ∇J (R: the env's return of that episode).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


def eos(vocab: int) -> int:
    return vocab


def pad(vocab: int) -> int:
    return vocab + 1


def generated(obs: jax.Array, prompt_len: int, vocab: int) -> jax.Array:
    """t, the number of tokens generated so far.  obs [..., P + H] -> int32 [...]."""
    return jnp.sum(obs[..., prompt_len:] != pad(vocab), axis=-1).astype(jnp.int32)


def next_position(obs: jax.Array, prompt_len: int, vocab: int) -> jax.Array:
    """P + t - 1: the position whose causal summary predicts the next token.  [..., L] -> [...]."""
    return prompt_len + generated(obs, prompt_len, vocab) - 1


def all_strings(num_symbols: int, length: int) -> np.ndarray:
    """Every string of `length` symbols from 0..num_symbols-1, lexicographic.  -> int32 [n^length, length]."""
    digits = np.unravel_index(np.arange(num_symbols ** length), (num_symbols,) * length)
    return np.stack(digits, axis=1).astype(np.int32).reshape(-1, length)


def prefix_obs(prompt: jax.Array, actions: jax.Array, vocab: int) -> jax.Array:
    """obs_t for t = 0..H-1 of the episode that emits `actions`.  prompt [P], actions [H] -> [H, P + H].

    Row t holds the prompt, actions[:t] and PAD after them (rows after an EOS are never used).
    """
    H = actions.shape[0]
    t = jnp.arange(H)
    gen = jnp.where(jnp.arange(H)[None, :] < t[:, None], actions[None, :], pad(vocab))
    return jnp.concatenate([jnp.broadcast_to(prompt, (H, prompt.shape[0])), gen], axis=1).astype(jnp.float32)


def episode_end(actions: jax.Array, vocab: int) -> jax.Array:
    """e(a) = index of the first EOS + 1, or H.  actions [..., H] -> int32 [...]."""
    H = actions.shape[-1]
    is_eos = actions == eos(vocab)
    return jnp.where(jnp.any(is_eos, axis=-1), jnp.argmax(is_eos, axis=-1) + 1, H).astype(jnp.int32)


def string_log_weights(dist_fn: Callable, params: Any, prompts: jax.Array, strings: jax.Array,
                       vocab: int) -> jax.Array:
    """log of Π_{t<e(a)} π(a_t|x, a_<t) · A^{-(H-e(a))} for every (prompt, string).

    dist_fn(params, obs [..., P + H]) -> Categorical.  prompts [M, P], strings [K, H] -> [M, K].
    Summed over strings, exp of it is 1 for every prompt (a distribution).
    """
    K, H = strings.shape
    A = vocab + 1
    ends = episode_end(strings, vocab)                                   # [K]
    live = jnp.arange(H)[None, :] < ends[:, None]                        # [K, H]

    def one_prompt(x):
        obs = jax.vmap(lambda a: prefix_obs(x, a, vocab))(strings)       # [K, H, L]
        lp = dist_fn(params, obs).log_prob(strings)                      # [K, H]
        return jnp.sum(jnp.where(live, lp, -jnp.log(float(A))), axis=1)  # [K]

    return jax.vmap(one_prompt)(prompts)


def exact_sequence_J(dist_fn: Callable, params: Any, prompts: jax.Array, strings: jax.Array,
                     returns: jax.Array, vocab: int) -> jax.Array:
    """J(θ) = (1/M) Σ_x Σ_a w_θ(x, a) R(x, a) (module docstring); jax.grad of it is the exact ∇J.

    prompts [M, P] (uniform), strings [K, H] = all_strings(V + 1, H), returns [M, K] -> scalar.
    """
    logw = string_log_weights(dist_fn, params, prompts, strings, vocab)
    return jnp.mean(jnp.sum(jnp.exp(logw) * returns, axis=1))
