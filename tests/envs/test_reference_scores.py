"""pgrun/envs/reference_scores.py's gymnax table against values derived by hand from the envs'
rules (gymnax 1.0.1 defaults), independently of the table: the bsuite optima exactly, and the
measured random-policy scores within 4 standard errors of the exact expectation. Needs no
gymnax (tests/envs/test_gymnax.py plays the optimal policies in gymnax itself)."""

import pytest

from pgrun.envs.reference_scores import reference_scores

# best achievable (expected) return, from the rules:
BSUITE_OPTIMUM = {
    # 8 rows: the treasure (+1) at the bottom right needs 8 "right" moves, each costing 0.01 / 8
    "DeepSea-bsuite": 1 - 8 * (0.01 / 8),
    # +1 for the right umbrella at the chain's end; the 9 coin flips between are ±1 with mean 0
    "UmbrellaChain-bsuite": 1.0 + 9 * 0.0,
    # one ±1 answer after the memory steps: +1 when it repeats the context
    "MemoryChain-bsuite": 1.0,
    # context 0 pays 1.1 one step later, the other four contexts 1 (all within 100 steps)
    "DiscountingChain-bsuite": 1.1,
    # one ±1 catch; the paddle starts 2 columns at most from the ball and has 9 moves
    "Catch-bsuite": 1.0,
}

# (exact expectation of uniform actions, standard error of the table's measurement)
BSUITE_RANDOM = {
    "DeepSea-bsuite": (0.5 ** 8 - 4 * (0.01 / 8), 0.0002),   # all 8 right w.p. 2⁻⁸; 4 right moves on average
    "UmbrellaChain-bsuite": (0.0, 0.0100),                    # the final ±1 is a fair coin
    "MemoryChain-bsuite": (0.0, 0.0032),
    "DiscountingChain-bsuite": ((1.1 + 4 * 1.0) / 5, 0.0001),  # first action uniform over 5 contexts
    # the paddle's clipped walk (−1, 0, +1 each w.p. ⅓) is doubly stochastic, so P(catch) = 1/5
    "Catch-bsuite": (2 * (1 / 5) - 1, 0.0025),
}


@pytest.mark.parametrize("gymnax_id", sorted(BSUITE_OPTIMUM))
def test_bsuite_solved_is_the_optimum_from_the_rules(gymnax_id):
    random, solved = reference_scores(f"gymnax:{gymnax_id}")
    assert solved == pytest.approx(BSUITE_OPTIMUM[gymnax_id], abs=1e-12)
    exact, se = BSUITE_RANDOM[gymnax_id]
    assert abs(random - exact) <= 4 * se + 1e-4, (random, exact)  # + rounding of the table's 4 decimals


@pytest.mark.parametrize("gymnax_id", ["Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar",
                                       "Freeway-MinAtar"])
def test_minatar_references_exist_and_random_is_below_the_published_score(gymnax_id):
    random, solved = reference_scores(f"gymnax:{gymnax_id}")
    assert random is not None and solved is not None and 0 <= random < solved


def test_unknown_and_unprefixed_gymnax_ids():
    assert reference_scores("gymnax:Seaquest-MinAtar") == (None, None)  # no published score in the table
    assert reference_scores("DeepSea-bsuite") == (None, None)           # gymnax envs only by their config name
    assert reference_scores("gymnax:CartPole-v1") == (None, None)       # gymnax's CartPole is not gymnasium's
