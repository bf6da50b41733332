"""pgrun.core.group against hand-computed values on a 2-group batch (G = 3).

Returns R = [1, 0, 0 | 3, 1, 2]:
  group means 1/3 and 2; leave-one-out means [0, .5, .5 | 1.5, 2.5, 2];
  group stds (ddof 1) sqrt(1/3) and 1.
Per-token loss ℓ[t, i] = t + 1 with lengths |o| = [1, 2, 3, 1, 2, 3] (T = 3): per-sequence
sums [1, 3, 6, 1, 3, 6] (total 20), 12 tokens, per-sequence means [1, 1.5, 2, 1, 1.5, 2].
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core import group

R = jnp.asarray([1.0, 0.0, 0.0, 3.0, 1.0, 2.0])
LENGTHS = np.array([1, 2, 3, 1, 2, 3])
VALID = jnp.asarray(np.arange(3)[:, None] < LENGTHS[None, :])
ELL = jnp.broadcast_to(jnp.arange(1.0, 4.0)[:, None], (3, 6))


def test_group_baselines_by_hand():
    np.testing.assert_allclose(R - group.group_baseline(R, 3, "group_mean"),
                               [2 / 3, -1 / 3, -1 / 3, 1, -1, 0], atol=1e-6)
    np.testing.assert_allclose(R - group.group_baseline(R, 3, "group_loo"),
                               [1, -0.5, -0.5, 1.5, -1.5, 0], atol=1e-6)
    np.testing.assert_allclose(group.group_baseline(R, 3, "none"), 0.0)


def test_group_std_scaling_by_hand():
    adv = (R - group.group_baseline(R, 3, "group_mean"))[None, :] * VALID
    scaled = group.scale_advantages(adv, R, VALID, 3, "group_std", eps=0.0)
    s1 = math.sqrt(1 / 3)
    want = np.array([2 / 3 / s1, -1 / 3 / s1, -1 / 3 / s1, 1, -1, 0])[None, :] * np.asarray(VALID)
    np.testing.assert_allclose(scaled, want, atol=1e-5)


def test_batch_std_scaling_by_hand():
    adv = jnp.asarray([[1.0, -1.0], [3.0, 0.0]])
    valid = jnp.asarray([[True, True], [True, False]])
    # valid values 1, -1, 3: mean 1, population std sqrt((0 + 4 + 4) / 3)
    scaled = group.scale_advantages(adv, R[:2], valid, 2, "batch_std", eps=0.0)
    s = math.sqrt(8 / 3)
    np.testing.assert_allclose(scaled, [[1 / s, -1 / s], [3 / s, 0.0]], atol=1e-6)


@pytest.mark.parametrize("kind, want", [
    ("seq_sum", 20 / 6),                    # (1/B) Σ_i Σ_t ℓ
    ("seq_mean_token_mean", 9 / 6),         # (1/B) Σ_i (1/|o_i|) Σ_t ℓ
    ("token_sum_const", 20 / (6 * 3)),      # C = 3
    ("batch_token_mean", 20 / 12),          # Σ ℓ / Σ |o_i|
])
def test_aggregations_by_hand(kind, want):
    assert float(group.aggregate(ELL, VALID, kind, const=3.0)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("kind, want", [
    ("seq_sum", 10 / 3), ("seq_mean_token_mean", 4.5 / 3), ("token_sum_const", 10 / 9), ("batch_token_mean", 10 / 6),
])
def test_aggregations_with_a_dropped_group(kind, want):
    keep = group.informative_groups(jnp.asarray([1.0, 1.0, 1.0, 0.0, 1.0, 0.0]), 3)
    np.testing.assert_array_equal(keep, [False, False, False, True, True, True])
    assert float(group.aggregate(ELL, VALID, kind, const=3.0, keep=keep)) == pytest.approx(want, rel=1e-6)


def test_sequence_ratio_is_the_length_normalised_mean():
    logp = jnp.asarray([[0.1, 0.3], [0.5, 0.0], [0.0, 0.0]])
    old = jnp.zeros((3, 2))
    valid = jnp.asarray([[True, True], [True, False], [False, False]])
    np.testing.assert_allclose(group.log_ratios(logp, old, valid, "sequence"), [[0.3, 0.3], [0.3, 0], [0, 0]],
                               atol=1e-7)
    np.testing.assert_allclose(group.log_ratios(logp, old, valid, "token"), [[0.1, 0.3], [0.5, 0], [0, 0]],
                               atol=1e-7)


def test_clip_higher_by_hand():
    ratio = jnp.asarray([0.5, 1.0, 1.5, 0.5, 1.5])
    adv = jnp.asarray([1.0, -1.0, 1.0, -1.0, -1.0])
    # min(ρA, clip(ρ, 0.8, 1.28)A)
    np.testing.assert_allclose(group.clipped_objective(ratio, adv, 0.2, 0.28), [0.5, -1.0, 1.28, -0.8, -1.5],
                               atol=1e-6)


def test_kl_estimators_by_hand():
    logp, ref = jnp.log(0.5), jnp.log(0.25)
    assert float(group.kl_k1(logp, ref)) == pytest.approx(math.log(2))
    assert float(group.kl_k3(logp, ref)) == pytest.approx(0.5 + math.log(2) - 1, rel=1e-6)
    assert float(group.kl_k3(ref, ref)) == 0.0
