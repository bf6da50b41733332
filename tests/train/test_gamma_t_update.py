"""estimator.gamma_t reaches the update: one SGD step (lr 1) moves θ by exactly the γ^t-weighted
surrogate gradient, computed here from the batch with numpy's γ^t; on the on-policy path
(episodes) and on the batch-reusing one in steps mode, where t comes from Batch.episode_t and
episodes begin before the batch."""

import jax
import jax.numpy as jnp
import numpy as np
from helpers import make_config
from jax.flatten_util import ravel_pytree

from pgrun.core.estimators import compute_advantages, next_state_values, pg_loss
from pgrun.train.program import make_train

GAMMA = 0.8


def _step(*overrides, samples=1):
    cfg = make_config("env=Chain", "policy=softmax_linear", "policy.features=env", "optimizer=sgd",
                      "optimizer.lr=1.0", f"gamma={GAMMA}", "episodes_per_iteration=8", "num_envs=4", "num_steps=10",
                      *overrides)
    tr = make_train(cfg)
    state = jax.jit(tr.init)(jax.random.PRNGKey(0))
    sample = jax.jit(tr.sample)
    for _ in range(samples):  # in steps mode, later batches start inside running episodes
        state, batch = sample(state)
    new, _ = jax.jit(tr.update)(state, batch)
    delta = ravel_pytree(new.params)[0] - ravel_pytree(state.params)[0]
    return tr, state, batch, np.asarray(delta, np.float64)


def _ascent(tr, state, batch, adv):
    """-∇ of the surrogate (1/B) Σ_{t,i} log π(a|s)·adv: the step SGD with lr 1 takes."""
    loss = lambda p, a: pg_loss(p, tr.policy, batch, a, 0.0)[0]  # noqa: E731
    g = jax.jit(jax.grad(loss))(state.params, jnp.asarray(adv, jnp.float32))
    return -np.asarray(ravel_pytree(g)[0], np.float64)


def test_on_policy_update_weights_step_t_by_gamma_to_the_t():
    tr, state, batch, delta = _step("estimator=reward_to_go", "estimator.gamma_t=true")
    adv = np.asarray(compute_advantages(batch, "reward_to_go", "none", GAMMA, 0.0).adv)
    rows = np.arange(adv.shape[0])[:, None]
    np.testing.assert_allclose(delta, _ascent(tr, state, batch, adv * GAMMA ** rows), atol=1e-5)
    plain = _ascent(tr, state, batch, adv)
    assert np.linalg.norm(delta - plain) > 1e-2 * np.linalg.norm(plain)
    _, _, _, delta_plain = _step("estimator=reward_to_go")  # the default is the lecture's form
    np.testing.assert_allclose(delta_plain, plain, atol=1e-5)


def test_steps_mode_update_uses_the_episode_time_carried_across_batches():
    tr, state, batch, delta = _step("estimator=actor_critic", "estimator.rollout=steps", "estimator.gamma_t=true",
                                    samples=3)
    t = np.asarray(batch.episode_t)
    assert (t[0] > 0).any() and (t[1:] == 0).any()  # episodes from earlier batches, and new ones
    critic = lambda o: tr.parts.critic_apply(state.critic_params, o)  # noqa: E731
    v_t = critic(batch.obs)
    v_tp1 = next_state_values(critic, batch, v_t, tr.max_steps)
    adv = np.asarray(compute_advantages(batch, "gae", "value", GAMMA, 0.95, v_t, v_tp1).adv)
    np.testing.assert_allclose(delta, _ascent(tr, state, batch, adv * GAMMA ** t), atol=1e-5)
    rows = np.arange(adv.shape[0])[:, None]
    wrong = _ascent(tr, state, batch, adv * GAMMA ** rows)  # t counted from the batch's start
    assert np.linalg.norm(delta - wrong) > 1e-2 * np.linalg.norm(wrong)
