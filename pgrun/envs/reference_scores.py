"""Reference scores per env for normalised comparisons (pgrun-compare):
score_norm = (score − random) / (solved − random).

Classic control. random: the uniform-random policy's mean episode return at the env's default
time limit, measured with `python scripts/random_scores.py --episodes 200` (gymnasium's envs,
which pgrun's are parity-tested against; seed 0; the standard error in the comment). solved:
the env class's `solved_threshold` (gymnasium's reward_threshold where one exists).

gymnax (`gymnax:<id>`, GYMNAX_SCORES; gymnax 1.0.1, default params and constructor arguments).
random: measured with gymnax's own env API, `python scripts/random_scores.py --gymnax
<ids> --episodes N` (gymnax.make, reset / step, uniform actions, seed 0; N = 100000 for bsuite,
1000 for MinAtar), s.e. and the exact expectation where the rules give one in the comments.
solved: for bsuite the best achievable expected return, derived from gymnax's source (the
comments give the derivation); for MinAtar gymnax's reported PPO return (gymnax 1.0.1
README, table "Implemented Accelerated Environments", column "Ckpt (Return)": the
gymnax-blines PPO checkpoints), a published reference score, not an optimum.

The scores assume the default time limit and env params: pgrun-compare does not use them for a
run with env.max_episode_steps or env.params changed (give those with `--ref`).
"""

from __future__ import annotations

from pgrun.envs.acrobot import Acrobot
from pgrun.envs.base import PGEnv
from pgrun.envs.cartpole import CartPole
from pgrun.envs.mountain_car import MountainCar, MountainCarContinuous
from pgrun.envs.pendulum import Pendulum

# env class -> mean return of uniform-random actions (python scripts/random_scores.py --episodes 200)
RANDOM_SCORES: dict[type[PGEnv], float] = {
    CartPole: 22.69,                # s.e. 0.81, 500-step limit
    Acrobot: -497.37,               # s.e. 1.30, 500-step limit (most episodes time out)
    MountainCar: -200.0,            # s.e. 0.00, every episode times out at 200 steps
    MountainCarContinuous: -33.21,  # s.e. 0.07, 999-step limit (action cost only)
    Pendulum: -1255.55,             # s.e. 20.99, 200-step limit
}

GYMNAX_PREFIX = "gymnax:"

# gymnax id -> (random, solved)
GYMNAX_SCORES: dict[str, tuple[float, float]] = {
    # size 8, deterministic: the treasure (+1) needs 8 "right" moves in a row, each costing
    # 0.01/8: best 1 − 8·0.01/8 = 0.99. random: s.e. 0.0002 (100000 episodes); exact
    # 2⁻⁸ − 4·0.01/8 = −0.00109 (right with probability ½ at each of the 8 steps)
    "DeepSea-bsuite": (-0.0012, 0.99),
    # chain_length 10: the umbrella chosen at step 1 earns ±1 at step 10 (+1 when it matches the
    # need shown in the observation); the 9 steps between pay independent ±1 coin flips (mean 0)
    # whatever the policy: best expected return 1. random: s.e. 0.0100; exact 0
    "UmbrellaChain-bsuite": (0.0090, 1.0),
    # memory_length 5: one reward, ±1 at the 6th step for repeating the context shown at the 1st:
    # best 1 (0 for a memoryless policy, such as pgrun's mlp and cnn: the last observation
    # carries no context). random: s.e. 0.0032; exact 0
    "MemoryChain-bsuite": (-0.0018, 1.0),
    # 5 actions: the first picks a context whose reward 1 comes at step 1, 3, 10, 30 or 100
    # (all within the time limit of 100 steps), context 0's being 1.1: best 1.1.
    # random: s.e. 0.0001; exact (1.1 + 4)/5 = 1.02
    "DiscountingChain-bsuite": (1.0201, 1.1),
    # 10 rows × 5 columns: one reward, ±1 when the ball reaches the paddle's row after 9 steps;
    # the paddle (start column 2) reaches any column in ≤ 2 moves: best 1.
    # random: s.e. 0.0025; exact −0.6 (the clipped ±1/0 walk of the paddle is doubly stochastic,
    # so after any number of steps P(catch) = 1/5 for a uniform ball column: 2·(1/5) − 1)
    "Catch-bsuite": (-0.5996, 1.0),
    # MinAtar (time limit 1000 steps; Freeway 2500): random s.e. 0.0226, 0.0996, 0.0307, 0.0200
    # (1000 episodes); solved: gymnax's PPO returns (README table, see the module docstring)
    "Breakout-MinAtar": (0.464, 28.0),
    "SpaceInvaders-MinAtar": (4.055, 131.0),
    "Asterix-MinAtar": (0.557, 15.0),
    "Freeway-MinAtar": (0.389, 58.0),
}


def reference_scores(env: str) -> tuple[float | None, float | None]:
    """(random, solved) for a config env name (`CartPole`, `gymnax:DeepSea-bsuite`) or a gymnasium
    id (`gym:CartPole-v1`, `CartPole-v1`); None where unknown."""
    if env.startswith(GYMNAX_PREFIX):
        return GYMNAX_SCORES.get(env[len(GYMNAX_PREFIX):], (None, None))
    key = env[len("gym:"):] if env.startswith("gym:") else env
    for cls, random in RANDOM_SCORES.items():
        if key in (cls.name, cls.gym_id):
            return random, cls.solved_threshold
    return None, None
