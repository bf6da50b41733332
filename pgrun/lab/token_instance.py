"""A tiny Tokens instance with its exact objective, shared by the lab's group-gradient and
ratio-bias studies: the config and parts built once, a random θ ~ N(0, 1) per parameter of the
policy, and every (prompt, string) with its return, so J(θ) is exact by enumeration
(`pgrun.core.sequences.exact_sequence_J`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgrun.config import compose, load
from pgrun.config.schema import Config
from pgrun.core.sequences import all_strings, exact_sequence_J
from pgrun.train.build import Components, build


class TokenInstance(NamedTuple):
    cfg: Config
    parts: Components
    theta: Any            # params pytree, every entry ~ N(0, 1)
    prompts: jax.Array    # [M, P] every prompt
    strings: jax.Array    # [K, H] every string of answer tokens and EOS
    returns: jax.Array    # [M, K] the return of each (prompt, string)

    def J(self, params: Any) -> jax.Array:
        """Exact J(params) = mean over prompts of Σ_strings π(string | prompt) R."""
        return exact_sequence_J(self.parts.policy.dist, params, self.prompts, self.strings, self.returns,
                                self.parts.env.vocab)


def token_instance(overrides: list[str], theta_seed: int) -> TokenInstance:
    """The instance of the config `overrides` at θ drawn with PRNGKey(theta_seed)."""
    cfg = load(compose(overrides))
    parts = build(cfg)
    env, policy = parts.env, parts.policy
    theta = jax.tree_util.tree_map(
        lambda x: jax.random.normal(jax.random.PRNGKey(theta_seed), x.shape), policy.init(jax.random.PRNGKey(0)))
    prompts = jnp.asarray(env.all_prompts())
    strings = jnp.asarray(all_strings(env.vocab + 1, env.horizon))
    returns = env.string_returns(parts.env_params, prompts, strings)
    return TokenInstance(cfg, parts, theta, prompts, strings, returns)
