"""Chain: a slippery ledge with two exits, a small episodic MDP with exact gradients.

    cell:    0      1    2    3    4    5    6    7    8    9    10     11
           cliff  [ ledge: cells 1..10, start uniform on 3..6         ]  exited
                        +5 exit                                  +15 exit

States (S = 12): 0 = cliff (terminal), 1..10 = ledge cells, 11 = exited (terminal).
Actions (A = 3): 0 LEFT, 1 RIGHT, 2 EXIT.
  LEFT / RIGHT cost `move_cost` (reward -0.5) and are slippery: the intended neighbour
  with prob 1 - slip, stay put with prob slip/2, the opposite neighbour with prob slip/2
  (slip = 0.2). Stepping left of cell 1 falls off the cliff (episode over, nothing more to
  collect); a wall stops moves right of cell 10.
  EXIT ends the episode deterministically and pays the cell's payoff: `near_payoff` (+5)
  at cell 2 (close to the start, next to the cliff), `far_payoff` (+15) at cell 10, 0 at
  the other cells.
Start: uniform over cells 3, 4, 5, 6. Time limit: 25 steps (truncation).
Observation: one_hot(state) float32 [12]; the time step is not observed.

Policies, exact (γ = 1, H = 25): uniform J = -0.595 (truncated with prob 2.5e-5); exit at
once J = 0; best policy that walks left to cell 2 and exits J = 3.58 (a local mode); best
stationary deterministic policy (walk right, exit at cell 10) J = 11.061, truncated with
prob 4.5e-4; best time-dependent policy J = 11.062. Solved at 10.0 (≈ 90% of the best;
needs walking right from all four start cells: the best policy that does not from cell 3
has J = 9.64). Exact gradient ascent from θ = 0 with the tabular softmax (logits = θ
[S, A]) passes the local mode and reaches J ≥ 10 after 322 steps at step size 1 (2792 at
0.1); with softmax-linear features one_hot(a) ⊗ [s, 1] (shared per-action bias) it stalls
in the walk-left mode at J = 3.21.

Rewards are per-(s, a) (paid for the action taken, whatever the slip), so the params are
exactly the tables `pgrun.core.exact` needs: params is a `pgrun.core.exact.TabularMDP` (P [S,A,S],
R [S,A], rho0 [S], terminal [S]) and `exact_J(params, π, γ, Chain.max_episode_steps)` is
the exact expected return of the episodes the runner samples.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from pgrun.core.exact import TabularMDP
from pgrun.envs.base import PGEnv
from pgrun.errors import UnknownKeyError

NUM_STATES = 12
NUM_ACTIONS = 3
CLIFF, EXITED = 0, 11
LEDGE = tuple(range(1, 11))
START_CELLS = (3, 4, 5, 6)
NEAR_CELL, FAR_CELL = 2, 10
LEFT, RIGHT, EXIT = 0, 1, 2


def chain_mdp(
    slip: float = 0.2,
    move_cost: float = 0.5,
    near_payoff: float = 5.0,
    far_payoff: float = 15.0,
) -> TabularMDP:
    """The Chain's tables (float32) for the given knobs; see the module docstring."""
    P = np.zeros((NUM_STATES, NUM_ACTIONS, NUM_STATES), np.float64)
    R = np.zeros((NUM_STATES, NUM_ACTIONS), np.float64)
    for s in LEDGE:
        for a, step in ((LEFT, -1), (RIGHT, +1)):
            for delta, prob in ((step, 1.0 - slip), (0, slip / 2), (-step, slip / 2)):
                P[s, a, min(s + delta, LEDGE[-1])] += prob  # s + delta = 0 is the cliff
            R[s, a] = -move_cost
        P[s, EXIT, EXITED] = 1.0
    R[NEAR_CELL, EXIT] = near_payoff
    R[FAR_CELL, EXIT] = far_payoff
    for s in (CLIFF, EXITED):  # absorbing
        P[s, :, s] = 1.0
    rho0 = np.zeros(NUM_STATES)
    rho0[list(START_CELLS)] = 1.0 / len(START_CELLS)
    terminal = np.zeros(NUM_STATES, bool)
    terminal[[CLIFF, EXITED]] = True
    return TabularMDP(
        P=jnp.asarray(P, jnp.float32),
        R=jnp.asarray(R, jnp.float32),
        rho0=jnp.asarray(rho0, jnp.float32),
        terminal=jnp.asarray(terminal),
    )


class Chain(PGEnv):
    name = "Chain"
    gym_id = None
    max_episode_steps = 25
    solved_threshold = 10.0
    observation_space = spaces.Box(0.0, 1.0, shape=(NUM_STATES,), dtype=np.float32)
    action_space = spaces.Discrete(NUM_ACTIONS)

    def get_default_params(self, **kwargs) -> TabularMDP:
        return chain_mdp(**kwargs)

    def params_from_overrides(self, overrides: dict[str, Any] | None) -> TabularMDP:
        """Tables rebuilt from the knobs of `chain_mdp` (slip, move_cost, ...) in `overrides`."""
        if not overrides:
            return self.default_params
        valid = sorted(inspect.signature(chain_mdp).parameters)
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise UnknownKeyError(
                f"env.params: unknown key(s) {unknown} for env {self.name}; "
                f"valid keys: {valid}"
            )
        return chain_mdp(**{k: float(v) for k, v in overrides.items()})

    def initial(self, rng, params=None):
        p = params or self.default_params
        return jax.random.choice(rng, NUM_STATES, p=p.rho0).astype(jnp.int32)

    def transition(self, state, action, rng=None, params=None):
        p = params or self.default_params
        return jax.random.choice(rng, NUM_STATES, p=p.P[state, action]).astype(jnp.int32)

    def observation(self, state, rng=None, params=None):
        return jax.nn.one_hot(state, NUM_STATES, dtype=jnp.float32)

    def terminal(self, state, rng=None, params=None):
        p = params or self.default_params
        return p.terminal[state]

    def reward(self, state, action, next_state, rng=None, params=None):
        p = params or self.default_params
        return p.R[state, action]

    def features(self, obs, a):
        """Tabular features x(s, a) = one_hot(a) ⊗ one_hot(s) (`policy.features=env`), so the
        softmax-linear policy is the tabular softmax logits[s, a] = θ[a, s].  obs [S] -> [A·S]."""
        return (jax.nn.one_hot(a, NUM_ACTIONS, dtype=obs.dtype)[:, None] * obs[None, :]).reshape(-1)
