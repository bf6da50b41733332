"""Reference scores per env for normalised comparisons (pgrun-compare):
score_norm = (score − random) / (solved − random).

random: the uniform-random policy's mean episode return at the env's default time limit,
measured with scripts/random_scores.py (gymnasium's envs, which pgrun's are parity-tested
against; 200 episodes, seed 0; the standard error in the comment). solved: the env class's
`solved_threshold` (gymnasium's reward_threshold where one exists). The random score assumes the
default time limit: a run with env.max_episode_steps changed needs its own (`--ref`).
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


def reference_scores(env: str) -> tuple[float | None, float | None]:
    """(random, solved) for a config env name (`CartPole`) or a gymnasium id (`gym:CartPole-v1`,
    `CartPole-v1`); None where unknown."""
    key = env[len("gym:"):] if env.startswith("gym:") else env
    for cls, random in RANDOM_SCORES.items():
        if key in (cls.name, cls.gym_id):
            return random, cls.solved_threshold
    return None, None
