"""Tokens: a language model's episode in miniature (prompt -> completion -> one verifiable reward).

`env=Tokens env.task=reverse env.prompt_len=4 env.vocab=8 env.horizon=5`. A prompt x of P
tokens is drawn uniformly from {0..V-1}^P; the policy then emits tokens one at a time
(actions 0..V-1, or EOS = V). The episode *terminates* when EOS is emitted or after H
tokens (the answer is final: a terminal state, not a time-limit cut; `env.max_episode_steps`
below H truncates instead, and is reported as truncation). Observation: the token layout of
`pgrun.core.sequences` ([P + H] floats: prompt, tokens so far, PAD).

Reward: 1 at the last step when the completion o (the tokens before EOS, or all H) equals the
task's answer y(x) exactly, else 0. Two optional shapings (env.params.<name>, default 0):
  format_reward c_f  every step pays c_f when its token is well placed: an answer token (< V)
                     at t < |y|, or EOS at t = |y|;
  token_reward c_p   partial credit at the last step: c_p · (1/|y|) Σ_{j<|y|} 1[o_j = y_j].
Exact match is read back from the final observation by `exact_match` (the metrics'
exact_match column), whatever the shaping.

Tasks (answer y(x), |y|):
  copy     x                                   P
  reverse  x reversed                          P
  sort     x sorted ascending                  P
  parity   (Σ x) mod 2                         1
  sum_mod  (Σ x) mod V                         1
  add      x = a ‖ b, two numbers of P/2 digits in base V (most significant first);
           y = a + b in P/2 + 1 digits         P/2 + 1
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnasium import spaces

from pgrun.core.names import MAX_VOCAB as MAX_VOCAB  # re-exported: the env's facts (pgrun.core.names)
from pgrun.core.names import TOKEN_TASKS as TASKS
from pgrun.core.names import answer_length
from pgrun.core.sequences import all_strings, eos, pad
from pgrun.envs.base import PGEnv


def answer(task: str, prompt: jax.Array, vocab: int) -> jax.Array:
    """y(x) for one prompt.  prompt int32 [P] -> int32 [|y|]."""
    P = prompt.shape[0]
    if task == "copy":
        return prompt
    if task == "reverse":
        return prompt[::-1]
    if task == "sort":
        return jnp.sort(prompt)
    if task == "parity":
        return jnp.sum(prompt, keepdims=True) % 2
    if task == "sum_mod":
        return jnp.sum(prompt, keepdims=True) % vocab
    if task == "add":
        k = P // 2
        place = vocab ** jnp.arange(k - 1, -1, -1)
        total = jnp.sum(prompt[:k] * place) + jnp.sum(prompt[k:] * place)
        return (total // vocab ** jnp.arange(k, -1, -1)) % vocab
    raise ValueError(f"unknown task {task!r}; valid: {TASKS}")


@struct.dataclass
class TokensParams:
    format_reward: float = 0.0  # c_f: paid per well-placed token (module docstring)
    token_reward: float = 0.0   # c_p: partial credit, the fraction of answer positions right


class Tokens(PGEnv):
    """Options (constructor dict, from the env.* config keys): task, prompt_len, vocab, horizon."""

    name = "Tokens"
    gym_id = None
    task: str = "reverse"
    prompt_len: int = 4
    vocab: int = 8
    horizon: int = 5
    max_episode_steps = 5  # the default horizon; an instance's is its own horizon
    solved_threshold = 0.95  # exact-match rate (with format_reward = 0)

    def __init__(self, options: dict[str, Any] | None = None):
        opts = {k: v for k, v in (options or {}).items() if v is not None}
        super().__init__(opts)
        self.prompt_len, self.vocab, self.horizon = int(self.prompt_len), int(self.vocab), int(self.horizon)
        self.max_episode_steps = self.horizon
        self.answer_len = answer_length(self.task, self.prompt_len)
        L = self.prompt_len + self.horizon
        self.observation_space = spaces.Box(0.0, float(pad(self.vocab)), shape=(L,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.vocab + 1)

    def get_default_params(self, **kwargs) -> TokensParams:
        return TokensParams(**kwargs)

    def initial(self, rng, params=None):
        prompt = jax.random.randint(rng, (self.prompt_len,), 0, self.vocab, jnp.int32)
        return {"prompt": prompt, "gen": jnp.full((self.horizon,), pad(self.vocab), jnp.int32),
                "t": jnp.int32(0), "done": jnp.bool_(False)}

    def transition(self, state, action, rng=None, params=None):
        a = jnp.asarray(action, jnp.int32)
        t = state["t"]
        gen = state["gen"].at[jnp.minimum(t, self.horizon - 1)].set(a)
        done = (a == eos(self.vocab)) | (t + 1 >= self.horizon)
        return {"prompt": state["prompt"], "gen": gen, "t": t + 1, "done": done}

    def observation(self, state, rng=None, params=None):
        return jnp.concatenate([state["prompt"], state["gen"]]).astype(jnp.float32)

    def terminal(self, state, rng=None, params=None):
        return state["done"]

    def _matches(self, state) -> jax.Array:
        """1[o_j = y_j] for j < |y| (positions past the completion count as wrong).  -> bool [|y|]."""
        L = min(self.answer_len, self.horizon)
        gen = state["gen"][:L]
        hit = gen == answer(self.task, state["prompt"], self.vocab)[:L]
        return jnp.concatenate([hit, jnp.zeros((self.answer_len - L,), bool)])

    def correct(self, state) -> jax.Array:
        """Exact match of a finished completion: |o| = |y| and o = y (bool)."""
        length = jnp.sum(state["gen"] < self.vocab)  # answer tokens come first; then EOS or PAD
        return (length == self.answer_len) & jnp.all(self._matches(state))

    def exact_match(self, final_obs: jax.Array) -> jax.Array:
        """`correct` of the episode whose last observation (next_obs of its last step) is
        final_obs [..., P + H] -> bool [...]."""
        tok = final_obs.astype(jnp.int32)
        fn = lambda o: self.correct({"prompt": o[:self.prompt_len], "gen": o[self.prompt_len:]})  # noqa: E731
        return jnp.vectorize(fn, signature="(l)->()")(tok)

    def reward(self, state, action, next_state, rng=None, params=None):
        p = params or self.default_params
        a, t, L = jnp.asarray(action, jnp.int32), state["t"], self.answer_len
        well_placed = jnp.where(t < L, a < self.vocab, (t == L) & (a == eos(self.vocab)))
        done = next_state["done"]
        final = jnp.where(done & self.correct(next_state), 1.0, 0.0)
        partial = jnp.where(done, jnp.mean(self._matches(next_state).astype(jnp.float32)), 0.0)
        return final + p.token_reward * partial + p.format_reward * well_placed.astype(jnp.float32)

    def all_prompts(self) -> np.ndarray:
        """Every prompt, each as likely as the others under `initial`.  -> int32 [V^P, P]."""
        return all_strings(self.vocab, self.prompt_len)

    def string_returns(self, params, prompts: jax.Array, strings: jax.Array) -> jax.Array:
        """The undiscounted return of the episode that emits each string (tokens after its end
        ignored), run through this env's own transition and reward.  [M, P], [K, H] -> [M, K]."""

        def episode(x, a):
            s0 = {"prompt": x, "gen": jnp.full((self.horizon,), pad(self.vocab), jnp.int32),
                  "t": jnp.int32(0), "done": jnp.bool_(False)}

            def body(s, a_t):
                s1 = self.transition(s, a_t, None, params)
                r = jnp.where(s["done"], 0.0, self.reward(s, a_t, s1, None, params))
                s1 = jax.tree_util.tree_map(lambda new, old: jnp.where(s["done"], old, new), s1, s)
                return s1, r

            return jnp.sum(jax.lax.scan(body, s0, a)[1])

        return jax.vmap(lambda x: jax.vmap(lambda a: episode(x, a))(strings))(prompts)
