"""Policies over token sequences (`pgrun.core.sequences` layout): a small causal transformer,
a GRU, and the tabular softmax over prefixes (exact gradients on tiny instances).

Each is a `pgrun.core.policies.Policy`: `dist(params, obs [..., P + H]) -> Categorical` over
the A = V + 1 next tokens (answer tokens and EOS). The networks run over the whole padded
sequence and read the logits at position P + t - 1, so, being causal, π(·|s_t) depends on
exactly the prompt and the t tokens generated. `dist` is what the update differentiates (the
teacher-forced log-probs of a whole batch in one forward).

The transformer can also sample with a KV cache (`transformer(..., kv_cache=True)`: the policy's
`decoder`, which rollouts use when present): per layer the keys and values of positions 0..L-1 of
each sequence, [N, L, heads, width/heads], filled once from the prompt (prefill: one forward over
the first observation) and then one token per step: the token at p = P + t - 1 is embedded, its key
and value written at p (`lax.dynamic_update_slice`), and its query attends to positions ≤ p only
(Flax's `MultiHeadDotProductAttention(decode=True)` with the cache index set to p). The same
parameters give the same π(·|s_t) as `dist` (tests/core/test_kv_cache.py: to float32 rounding).
"""

from __future__ import annotations

from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pgrun.core.distributions import Categorical
from pgrun.core.names import prefix_table_size
from pgrun.core.policies import Decoder, Policy
from pgrun.core.sequences import generated, next_position


class CausalTransformer(nn.Module):
    """Pre-LN decoder: token + learned position embeddings, `layers` × (causal self-attention,
    MLP 4·width), final LayerNorm, linear head.  tokens int [N, L] -> logits [N, L, out]."""

    num_tokens: int
    length: int
    out: int
    width: int = 32
    layers: int = 1
    heads: int = 2
    decode: bool = False  # one token of one sequence at a time, with the "cache" collection

    @nn.compact
    def __call__(self, tokens, position=None):
        """decode=False: tokens int [N, L] -> logits [N, L, out].  decode=True: the token int [1] of one
        sequence at `position` p (int scalar; the cache's index set to p) -> logits [1, out], its key and
        value written into the cache at p and attention to the cached positions ≤ p."""
        x = nn.Embed(self.num_tokens, self.width, embedding_init=nn.initializers.normal(0.1))(tokens)
        pos = self.param("pos", nn.initializers.normal(0.1), (self.length, self.width))
        if self.decode:
            x, mask = x + jax.lax.dynamic_slice_in_dim(pos, position, 1), None  # Flax masks to ≤ p
        else:
            x, mask = x + pos, nn.make_causal_mask(tokens)      # mask [N, 1, L, L]
        for _ in range(self.layers):
            h = nn.LayerNorm()(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.width,
                                                    decode=self.decode)(h, h, mask=mask)
            h = nn.LayerNorm()(x)
            x = x + nn.Dense(self.width)(nn.gelu(nn.Dense(4 * self.width)(h)))
        x = nn.LayerNorm()(x)
        return nn.Dense(self.out, kernel_init=nn.initializers.normal(0.01))(x)


class GRUNet(nn.Module):
    """Token embedding -> GRU over the sequence -> linear head.  tokens int [N, L] -> [N, L, out]."""

    num_tokens: int
    out: int
    width: int = 64

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.num_tokens, self.width, embedding_init=nn.initializers.normal(0.1))(tokens)
        h = nn.RNN(nn.GRUCell(self.width))(x)
        return nn.Dense(self.out, kernel_init=nn.initializers.normal(0.01))(h)


def _sequence_policy(net: nn.Module, prompt_len: int, vocab: int, horizon: int, decoder: Decoder | None = None
                     ) -> Policy:
    L = prompt_len + horizon

    def init(key):
        return {"net": net.init(key, jnp.zeros((1, L), jnp.int32))}

    def dist(params, obs):
        batch = obs.shape[:-1]
        flat = obs.reshape((-1, L))
        logits = cast(jax.Array, net.apply(params["net"], flat.astype(jnp.int32)))   # [N, L, A]
        pos = jnp.clip(next_position(flat, prompt_len, vocab), 0, L - 1)
        picked = jnp.take_along_axis(logits, pos[:, None, None], axis=1)[:, 0]     # [N, A]
        return Categorical(picked.reshape(batch + (vocab + 1,)))

    return Policy(init, dist, True, decoder)


def _is_key_or_value(module: nn.Module, method: str) -> bool:
    return isinstance(module, nn.DenseGeneral) and module.name in ("key", "value") and method == "__call__"


def transformer_decoder(net: CausalTransformer, prompt_len: int, vocab: int) -> Decoder:
    """The KV-cache `Decoder` of `net` (module docstring).  cache: per attention layer
    {"cached_key", "cached_value": [N, L, heads, width/heads], "cache_index": int32 [N]}."""
    dec = net.clone(decode=True)
    L = net.length

    def init(params, obs):
        """Prefill: one forward over obs [N, L]; keeps every position's key and value. Causal, so
        those of the tokens present are exact; those of the PADs after them are overwritten (step
        writes p before its query attends to ≤ p) before any query reaches them."""
        _, inter = net.apply(params["net"], obs.astype(jnp.int32), capture_intermediates=_is_key_or_value,
                             mutable=["intermediates"])
        n = obs.shape[0]
        return {name: {"cached_key": kv["key"]["__call__"][0], "cached_value": kv["value"]["__call__"][0],
                       "cache_index": jnp.zeros((n,), jnp.int32)}
                for name, kv in inter["intermediates"].items() if name.startswith("MultiHeadDotProductAttention")}

    def step(params, cache, obs):
        """obs [N, L] -> (Categorical [N] at position p = P + t - 1, the cache with p written)."""
        p = jnp.clip(next_position(obs, prompt_len, vocab), 0, L - 1)                 # [N]
        token = jnp.take_along_axis(obs.astype(jnp.int32), p[:, None], axis=1)          # [N, 1]
        cache = {name: {**c, "cache_index": p} for name, c in cache.items()}

        def one(c, tok, q):
            logits, mut = dec.apply({"params": params["net"]["params"], "cache": c}, tok, q, mutable=["cache"])
            return logits[0], mut["cache"]

        logits, cache = jax.vmap(one)(cache, token, p)
        return Categorical(logits), cache

    return Decoder(init, step)


def transformer(prompt_len: int, vocab: int, horizon: int, width: int, layers: int, heads: int,
                kv_cache: bool = False) -> Policy:
    """The causal transformer policy (module docstring); vocab + 2 input tokens (with EOS, PAD);
    kv_cache: rollouts sample through `transformer_decoder` instead of recomputing `dist`."""
    net = CausalTransformer(vocab + 2, prompt_len + horizon, vocab + 1, width, layers, heads)
    decoder = transformer_decoder(net, prompt_len, vocab) if kv_cache else None
    return _sequence_policy(net, prompt_len, vocab, horizon, decoder)


def gru(prompt_len: int, vocab: int, horizon: int, width: int) -> Policy:
    """The GRU policy (module docstring)."""
    return _sequence_policy(GRUNet(vocab + 2, vocab + 1, width), prompt_len, vocab, horizon)


def prefix_index(obs: jax.Array, prompt_len: int, vocab: int, horizon: int) -> jax.Array:
    """The row of state (x, o_<t): idx(x)·S + Σ_{k<t} V^k + idx(o_<t), with idx the base-V
    number of a string and S = Σ_{t<H} V^t.  obs [..., P + H] -> int32 [...]."""
    tok = obs.astype(jnp.int32)
    x, gen = tok[..., :prompt_len], tok[..., prompt_len:]
    t = generated(obs, prompt_len, vocab)
    x_idx = jnp.sum(x * (vocab ** np.arange(prompt_len - 1, -1, -1)), axis=-1)
    j = np.arange(horizon)
    # o_<t as a base-V number, most significant first: o_j weighs V^(t-1-j) for j < t
    weights = jnp.where(j < t[..., None], vocab ** jnp.clip(t[..., None] - 1 - j, 0, None), 0)
    g_idx = jnp.sum(jnp.where(j < t[..., None], gen, 0) * weights, axis=-1)
    offsets = jnp.asarray(np.concatenate([[0], np.cumsum([vocab ** k for k in range(horizon)])]), jnp.int32)
    size = sum(vocab ** k for k in range(horizon))
    return (x_idx * size + offsets[jnp.clip(t, 0, horizon)] + g_idx).astype(jnp.int32)


def tabular_prefix(prompt_len: int, vocab: int, horizon: int) -> Policy:
    """π_θ(a|x, o_<t) = softmax(θ[row(x, o_<t)])_a, θ [rows, V + 1] starting at 0 (uniform):
    every state its own logits, so J(θ) and ∇J are exact by enumeration (`pgrun.core.sequences`)."""
    rows = prefix_table_size(prompt_len, vocab, horizon)

    def init(key):
        return {"theta": jnp.zeros((rows, vocab + 1), jnp.float32)}

    def dist(params, obs):
        return Categorical(params["theta"][prefix_index(obs, prompt_len, vocab, horizon)])

    return Policy(init, dist, True)
