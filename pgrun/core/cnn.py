"""A small convolutional policy for image observations (MinAtar's [10, 10, C] grids).

Observations reach every policy flattened, obs [..., H·W·C]; the net reshapes them to
[N, H, W, C], applies 3×3 convolutions (stride 1, VALID padding, `channels` filters each) with
the activation, flattens, then the dense `hidden` layers and the head, as in MinAtar's reference
network (one conv of 16 filters, one dense layer of 128, ReLU). Heads as in `policies.mlp`:
categorical logits for a Discrete action space, Gaussian mean with a learned state-independent
log σ (bounded, `bounded_log_std`) for a Box one.
"""

from __future__ import annotations

from typing import Any, Sequence, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from pgrun.core.distributions import Categorical, DiagGaussian
from pgrun.core.policies import ACTIVATIONS, Policy, bounded_log_std


class CNN(nn.Module):
    """Conv layers, then dense layers, then a linear head.  x [..., H·W·C] -> [..., out]."""

    image_shape: tuple[int, int, int]
    channels: Sequence[int]
    hidden: Sequence[int]
    out: int
    activation: str = "relu"
    out_scale: float = 0.01

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        batch_shape = x.shape[:-1]
        x = x.reshape((-1,) + tuple(self.image_shape))  # [N, H, W, C]
        for c in self.channels:
            x = act(nn.Conv(c, (3, 3), padding="VALID", kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        x = x.reshape((x.shape[0], -1))
        for h in self.hidden:
            x = act(nn.Dense(h, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        x = nn.Dense(self.out, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)
        return x.reshape(batch_shape + (self.out,))


def cnn(image_shape: Sequence[int], action_space: spaces.Discrete | spaces.Box, channels: Sequence[int],
        hidden: Sequence[int], activation: str, init_sigma: float = 1.0) -> Policy:
    """Convolutional policy over flattened image observations obs [..., H·W·C] (see the module docstring)."""
    h, w, c = (int(d) for d in image_shape)
    discrete = isinstance(action_space, spaces.Discrete)
    out = int(action_space.n) if isinstance(action_space, spaces.Discrete) else int(np.prod(action_space.shape))
    net = CNN((h, w, c), tuple(channels), tuple(hidden), out, activation)

    def init(key):
        params: dict[str, Any] = {"net": net.init(key, jnp.zeros((h * w * c,), jnp.float32))}
        if not discrete:
            params["log_std"] = jnp.full((out,), np.log(init_sigma), jnp.float32)
        return params

    def dist(params, obs):
        y = cast(jax.Array, net.apply(params["net"], obs))
        return Categorical(y) if discrete else DiagGaussian(y, bounded_log_std(params["log_std"]))

    return Policy(init, dist, discrete)
