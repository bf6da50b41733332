"""policy=cnn (pgrun/core/cnn.py): logits and log-probs against a NumPy convolution written out
loop by loop on the [H, W, C] image the flat observation encodes; batch shapes; the Gaussian head;
the config check that it needs image observations. The run on MinAtar is in tests/envs/test_gymnax.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium import spaces
from helpers import make_config

from pgrun.core.cnn import cnn
from pgrun.errors import ConfigError
from pgrun.train.build import build

H, W, C, A = 5, 6, 3, 4


def np_forward(p, obs_flat):
    """Reference: image = obs.reshape(H, W, C) (C order, gymnax's flattening); 3x3 VALID conv,
    ReLU, flatten, dense, ReLU, dense head. p: the flax params {Conv_0, Dense_0, Dense_1}."""
    img = np.asarray(obs_flat, np.float64).reshape(H, W, C)
    k, b = np.asarray(p["Conv_0"]["kernel"], np.float64), np.asarray(p["Conv_0"]["bias"], np.float64)  # [3,3,C,F]
    F = k.shape[-1]
    conv = np.zeros((H - 2, W - 2, F))
    for i in range(H - 2):
        for j in range(W - 2):
            for f in range(F):
                conv[i, j, f] = np.sum(img[i:i + 3, j:j + 3, :] * k[:, :, :, f]) + b[f]
    x = np.maximum(conv, 0).reshape(-1)
    x = np.maximum(x @ np.asarray(p["Dense_0"]["kernel"]) + np.asarray(p["Dense_0"]["bias"]), 0)
    return x @ np.asarray(p["Dense_1"]["kernel"]) + np.asarray(p["Dense_1"]["bias"])


def test_cnn_logits_and_log_probs_match_a_numpy_convolution():
    pol = cnn((H, W, C), spaces.Discrete(A), channels=[2], hidden=[7], activation="relu")
    params = pol.init(jax.random.key(0))
    # the head is initialised small (orthogonal 0.01): scale it up so the check is not vacuous
    params["net"]["params"]["Dense_1"]["kernel"] = params["net"]["params"]["Dense_1"]["kernel"] * 300.0
    obs = jax.random.normal(jax.random.key(1), (2, 3, H * W * C))  # [T, B, obs_dim]
    d = pol.dist(params, obs)
    assert d.logits.shape == (2, 3, A)
    p = jax.tree_util.tree_map(np.asarray, params["net"]["params"])
    ref = np.stack([np_forward(p, o) for o in np.asarray(obs).reshape(-1, H * W * C)]).reshape(2, 3, A)
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(np.asarray(d.logits), ref, rtol=1e-4, atol=1e-5)
    actions = jnp.array([[0, 1, 2], [3, 0, 1]])
    ref_lp = np.take_along_axis(ref - np.log(np.exp(ref).sum(-1, keepdims=True)), np.asarray(actions)[..., None], -1)
    np.testing.assert_allclose(np.asarray(d.log_prob(actions)), ref_lp[..., 0], rtol=1e-4, atol=1e-5)
    # one observation without batch dims gives the same logits as inside the batch
    np.testing.assert_allclose(np.asarray(pol.dist(params, obs[1, 2]).logits), np.asarray(d.logits[1, 2]), atol=1e-6)


def test_cnn_gaussian_head():
    pol = cnn((H, W, C), spaces.Box(-1, 1, (2,)), channels=[2], hidden=[5], activation="tanh", init_sigma=0.5)
    params = pol.init(jax.random.key(0))
    d = pol.dist(params, jnp.zeros((4, H * W * C)))
    assert not pol.discrete and d.mean.shape == (4, 2)
    np.testing.assert_allclose(np.exp(np.asarray(params["log_std"])), 0.5, rtol=1e-6)
    grads = jax.grad(lambda prm: pol.dist(prm, jnp.ones((H * W * C,))).log_prob(jnp.array([0.3, -0.2])))(params)
    assert float(jnp.abs(grads["net"]["params"]["Conv_0"]["kernel"]).sum()) > 0


def test_cnn_on_flat_observations_is_a_config_error():
    with pytest.raises(ConfigError, match="policy=cnn needs image observations.*valid choices for this env: mlp"):
        build(make_config("env=CartPole", "policy=cnn"))
