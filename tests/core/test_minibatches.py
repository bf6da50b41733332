"""The minibatch shuffle: `pgrun.core.minibatches.permutation` (keyed Feistel network, no sort)."""

import jax
import numpy as np
import pytest

from pgrun.core.minibatches import permutation, split_transitions


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 100, 1000, 2048, 4097])
def test_permutation_is_a_bijection(n):
    for seed in range(3):
        p = np.asarray(permutation(jax.random.PRNGKey(seed), n))
        assert p.dtype == np.int32 and sorted(p.tolist()) == list(range(n))


def test_permutation_depends_on_the_key_only():
    a = np.asarray(jax.jit(lambda k: permutation(k, 2048))(jax.random.PRNGKey(0)))
    b = np.asarray(permutation(jax.random.PRNGKey(0), 2048))
    c = np.asarray(permutation(jax.random.PRNGKey(1), 2048))
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.9
    assert (a != np.arange(2048)).mean() > 0.9  # not the identity


@pytest.mark.parametrize("n", [16, 12])
def test_permutation_places_every_item_uniformly(n):
    """Over 20000 keys, where each item lands is uniform over the n positions: a χ² test on
    the n×n count table ((n-1)² degrees of freedom), and item pairs stay together no more
    often than under a uniform shuffle (neighbours would if the cipher were weak)."""
    keys = jax.random.split(jax.random.PRNGKey(7), 20000)
    P = np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, n)))(keys))
    counts = np.stack([np.bincount(P[:, i], minlength=n) for i in range(n)])
    expected = len(keys) / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = (n - 1) ** 2
    assert chi2 < dof + 5 * np.sqrt(2 * dof), chi2  # ~5 sigma
    adjacent = np.mean(np.abs(P[:, 0] - P[:, 1]) == 1)  # items 0, 1 end up next to each other
    assert abs(adjacent - 2 / n) < 0.02, adjacent


def test_split_transitions_keeps_rows_together():
    T, B, M = 8, 4, 4
    obs = np.arange(T * B * 2, dtype=np.float32).reshape(T, B, 2)
    idx = np.arange(T * B).reshape(T, B)
    out = split_transitions(jax.random.PRNGKey(0), {"obs": obs, "idx": idx}, M)
    assert out["obs"].shape == (M, 1, T * B // M, 2)
    flat_idx = np.asarray(out["idx"]).reshape(-1)
    assert sorted(flat_idx.tolist()) == list(range(T * B))
    np.testing.assert_array_equal(np.asarray(out["obs"]).reshape(-1, 2), obs.reshape(-1, 2)[flat_idx])
