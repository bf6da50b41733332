"""Action distributions as small pytrees: sample, log_prob, entropy, kl.

Batch shapes broadcast: a Categorical over logits [..., A] gives log_prob [...];
a DiagGaussian over mean [..., D] gives log_prob [...] (summed over D).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

_LOG_2PI = jnp.log(2.0 * jnp.pi)


class Categorical(NamedTuple):
    """π(a) = softmax(logits)_a.  logits: [..., A]."""

    logits: jax.Array

    def log_probs(self) -> jax.Array:
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key) -> jax.Array:
        return jax.random.categorical(key, self.logits, axis=-1)

    def log_prob(self, a) -> jax.Array:
        # a one-hot product rather than a gather: its gradient is elementwise, not a scatter
        lp = self.log_probs()
        return jnp.sum(lp * jax.nn.one_hot(a, lp.shape[-1], dtype=lp.dtype), axis=-1)

    def entropy(self) -> jax.Array:
        lp = self.log_probs()
        return -jnp.sum(jnp.exp(lp) * lp, axis=-1)

    def kl(self, other: "Categorical") -> jax.Array:
        """KL(self ‖ other) = Σ_a p(a) (log p(a) - log q(a))."""
        lp, lq = self.log_probs(), other.log_probs()
        return jnp.sum(jnp.exp(lp) * (lp - lq), axis=-1)

    def mode(self) -> jax.Array:
        return jnp.argmax(self.logits, axis=-1)


class DiagGaussian(NamedTuple):
    """π(a) = N(a; mean, diag(exp(log_std)²)).  mean: [..., D]; log_std broadcasts to it."""

    mean: jax.Array
    log_std: jax.Array

    def sample(self, key) -> jax.Array:
        std = jnp.exp(self.log_std)
        return self.mean + std * jax.random.normal(key, jnp.broadcast_shapes(self.mean.shape, std.shape))

    def log_prob(self, a) -> jax.Array:
        """log π(a) = Σ_d [-(a_d - μ_d)² / (2σ_d²) - log σ_d - ½ log 2π]."""
        z = (a - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * z**2 - self.log_std - 0.5 * _LOG_2PI, axis=-1)

    def entropy(self) -> jax.Array:
        log_std = jnp.broadcast_to(self.log_std, self.mean.shape)
        return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)

    def kl(self, other: "DiagGaussian") -> jax.Array:
        """KL(self ‖ other) for diagonal Gaussians, summed over D."""
        var_p, var_q = jnp.exp(2 * self.log_std), jnp.exp(2 * other.log_std)
        kl = other.log_std - self.log_std + (var_p + (self.mean - other.mean) ** 2) / (2 * var_q) - 0.5
        return jnp.sum(jnp.broadcast_to(kl, jnp.broadcast_shapes(self.mean.shape, other.mean.shape)), axis=-1)

    def mode(self) -> jax.Array:
        return self.mean
