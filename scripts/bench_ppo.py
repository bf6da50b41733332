"""PPO on CartPole-v1: pgrun vs rejax 0.1.3, side by side, same settings, same protocol.

Settings (both): 16 envs × 128 steps per iteration, 4 epochs × 4 minibatches, 64×64 tanh MLPs
(actor and critic), Adam lr 2.5e-3, γ 0.99, GAE λ 0.95, clip ε 0.2, entropy 0.01, value
coefficient 0.5, 131072 env steps per seed, 16 seeds vmapped in one jitted program.
Each library keeps its own defaults elsewhere (printed below): pgrun clips the global
gradient norm at 0.5 and normalises advantages over the batch; rejax normalises them per
minibatch, clips the value loss and does not clip gradients.

Protocol: each side compiles its whole training program once (ahead of time, timed apart),
then runs it `--rounds` times on fresh seeds, pgrun and rejax alternating round by round so
that load from other processes hits both alike; env-steps/s = 16 × 131072 / wall seconds of
one whole training run (block_until_ready). The final policy of each seed is evaluated the
same way for both (outside the timing): 128 episodes with the stochastic policy, rejax's own
`evaluate_single` protocol; pgrun also reports its training return over the last 5 iterations.

rejax runs in its own virtualenv (its pins conflict with pgrun's), as a worker subprocess
driven over stdin/stdout:

    python3 -m venv /tmp/rejax-venv && /tmp/rejax-venv/bin/pip install rejax==0.1.3 "gymnax<1.0"
    python scripts/bench_ppo.py --rejax-python /tmp/rejax-venv/bin/python [--rounds 3]

`--rejax-prng rbg` runs rejax with XLA's RngBitGenerator keys (pgrun's default) instead of
its default threefry, to see how much of the gap is the PRNG.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SEEDS, NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES = 16, 16, 128, 4, 4
TOTAL_STEPS, LR, GAMMA, LAM, CLIP, ENT, VF = 131072, 2.5e-3, 0.99, 0.95, 0.2, 0.01, 0.5
EVAL_EPISODES = 128


def ci95(x) -> str:
    x = np.asarray(x, float)
    h = 1.96 * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else 0.0
    return f"{x.mean():7.1f} ± {h:5.1f}"


# ----------------------------------------------------------------------------- pgrun


class PgrunSide:
    """pgrun's PPO: one compiled chunk = the whole run (64 iterations) for all seeds."""

    def __init__(self):
        import jax

        from pgrun.config import compose, load
        from pgrun.train.program import init_seeds, make_train

        iterations = TOTAL_STEPS // (NUM_ENVS * NUM_STEPS)
        overrides = ["estimator=ppo", "env=CartPole", f"num_envs={NUM_ENVS}", f"num_steps={NUM_STEPS}",
                     f"estimator.epochs={EPOCHS}", f"estimator.minibatches={MINIBATCHES}", "policy=mlp",
                     "policy.hidden=[64,64]", "policy.activation=tanh", "estimator.critic_hidden=[64,64]",
                     f"optimizer.lr={LR}", f"gamma={GAMMA}", f"estimator.gae_lambda={LAM}",
                     f"estimator.clip_eps={CLIP}", f"estimator.entropy_coef={ENT}", f"estimator.value_coef={VF}",
                     f"iterations={iterations}", f"log_every={iterations}", f"num_seeds={SEEDS}"]
        self.cfg = load(compose(overrides))  # validated; make_train's build checks it against the env
        self.jax, self.tr = jax, make_train(self.cfg)
        self.init = lambda keys: init_seeds(self.tr.init, keys)
        t0 = time.perf_counter()
        state = self.init(self.keys(0))
        self.chunk = jax.jit(jax.vmap(self.tr.chunk)).lower(state).compile()
        self.compile_s = time.perf_counter() - t0
        self.eval = jax.jit(jax.vmap(self._eval_one))

    def keys(self, r: int):
        return self.jax.numpy.stack([self.jax.random.PRNGKey(1000 * r + s) for s in range(SEEDS)])

    def _eval_one(self, params, key):
        from pgrun.rollout.episodes import rollout_episodes

        b = rollout_episodes(self.tr.env, self.tr.env_params, self.tr.policy, params, key, EVAL_EPISODES,
                             self.tr.max_steps)
        return b.reward.sum(0).mean()

    def run(self, r: int) -> dict:
        jax = self.jax
        state = jax.block_until_ready(self.init(self.keys(r)))
        t0, c0 = time.perf_counter(), time.process_time()
        state, m = self.chunk(state)
        jax.block_until_ready(state)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        m = jax.device_get(m)
        steps = int(np.sum(m["env_steps"][:, -1]))
        train_ret = np.nanmean(m["return_mean"][:, -5:], axis=1)
        ev = np.asarray(self.eval(state.params, jax.random.split(jax.random.PRNGKey(r + 7), SEEDS)))
        return {"seconds": seconds, "cpu": cpu, "steps": steps, "eval": ev.tolist(), "train": train_ret.tolist()}


# ----------------------------------------------------------------------------- rejax worker


def rejax_worker(prng: str) -> None:
    """Runs in rejax's venv: compile once, then answer `run <r>` lines with JSON results."""
    import jax

    if prng != "default":
        jax.config.update("jax_default_prng_impl", prng)
    from rejax import PPO
    from rejax.evaluate import evaluate_single

    algo = PPO.create(env="CartPole-v1", num_envs=NUM_ENVS, num_steps=NUM_STEPS, num_epochs=EPOCHS,
                      num_minibatches=MINIBATCHES, learning_rate=LR, gamma=GAMMA, gae_lambda=LAM, clip_eps=CLIP,
                      ent_coef=ENT, vf_coef=VF, total_timesteps=TOTAL_STEPS, eval_freq=TOTAL_STEPS,
                      skip_initial_evaluation=True,
                      agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)})
    # no evaluation inside the timed program; the final policies are evaluated afterwards
    algo = algo.replace(eval_callback=lambda a, ts, rng: jax.numpy.zeros(()))
    train = jax.jit(jax.vmap(algo.train))
    keys = lambda r: jax.random.split(jax.random.PRNGKey(1000 * r), SEEDS)  # noqa: E731
    t0 = time.perf_counter()
    compiled = train.lower(keys(0)).compile()
    compile_s = time.perf_counter() - t0

    def eval_one(ts, rng):
        act = algo.make_act(ts)
        rngs = jax.random.split(rng, EVAL_EPISODES)
        _, returns = jax.vmap(lambda k: evaluate_single(act, algo.env, algo.env_params, k, 500))(rngs)
        return returns.mean()

    evaluate = jax.jit(jax.vmap(eval_one))
    print(json.dumps({"ready": True, "compile_s": compile_s, "jax": jax.__version__,
                      "prng": str(jax.config.jax_default_prng_impl)}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        r = int(cmd[1])
        k = jax.block_until_ready(keys(r))
        t0, c0 = time.perf_counter(), time.process_time()
        ts, _ = compiled(k)
        jax.block_until_ready(ts)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        ev = np.asarray(evaluate(ts, jax.random.split(jax.random.PRNGKey(r + 7), SEEDS)))
        steps = int(np.sum(np.asarray(ts.global_step)))
        print(json.dumps({"seconds": seconds, "cpu": cpu, "steps": steps, "eval": ev.tolist()}), flush=True)


def peer_env() -> dict[str, str]:
    """The environment for a peer's process: PYTHONPATH cleared, and XLA_FLAGS without the option
    `import pgrun` adds to it (pgrun.UNSWITCH_FLAG), so the peer compiles as its users' would."""
    from pgrun import UNSWITCH_FLAG

    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if f != UNSWITCH_FLAG)
    return dict(os.environ, PYTHONPATH="", XLA_FLAGS=flags)


class RejaxSide:
    def __init__(self, python: str, prng: str):
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "--worker", "--rejax-prng", prng],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd="/", env=peer_env())
        hello = json.loads(self._readline())
        self.compile_s, self.info = hello["compile_s"], hello

    def _readline(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"rejax worker exited with code {self.proc.wait()}")
        return line

    def run(self, r: int) -> dict:
        self.proc.stdin.write(f"run {r}\n")
        self.proc.stdin.flush()
        return json.loads(self._readline())

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rejax-python", default="/tmp/rejax-venv/bin/python")
    ap.add_argument("--rejax-prng", default="default", choices=["default", "rbg", "threefry2x32"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        rejax_worker(args.rejax_prng)
        return

    pg = PgrunSide()
    print(f"pgrun: compile {pg.compile_s:.1f}s", flush=True)
    rj = None
    if os.path.exists(args.rejax_python):
        try:
            rj = RejaxSide(args.rejax_python, args.rejax_prng)
            print(f"rejax: compile {rj.compile_s:.1f}s ({rj.info['jax']}, prng {rj.info['prng']})", flush=True)
        except Exception as e:  # report exactly what failed, keep the pgrun figures
            print(f"rejax: could not start: {e!r}", flush=True)
    else:
        print(f"rejax: no interpreter at {args.rejax_python}; see the module docstring", flush=True)

    res = {"pgrun": [], "rejax": []}
    for r in range(1, args.rounds + 1):
        res["pgrun"].append(pg.run(r))
        x = res["pgrun"][-1]
        line = f"round {r}: pgrun {x['steps'] / x['seconds']:8.0f} steps/s {x['steps'] / x['cpu']:8.0f} steps/cpu-s"
        if rj is not None:
            res["rejax"].append(rj.run(r))
            x = res["rejax"][-1]
            line += f"   rejax {x['steps'] / x['seconds']:8.0f} steps/s {x['steps'] / x['cpu']:8.0f} steps/cpu-s"
        print(line, flush=True)
    if rj is not None:
        rj.close()

    print(f"\nPPO CartPole-v1, {SEEDS} seeds x {TOTAL_STEPS} steps, {NUM_ENVS}x{NUM_STEPS}, "
          f"{EPOCHS} epochs x {MINIBATCHES} minibatches, 64x64 tanh, lr {LR}")
    print(f"{'':6} {'steps/s median':>15} {'best':>8} {'steps/cpu-s median':>19} "
          f"{'eval return (128 ep, mean ± 95% CI over seeds)':>48}")
    med, med_cpu = {}, {}
    for side, runs in res.items():
        if not runs:
            continue
        sps = [x["steps"] / x["seconds"] for x in runs]
        med[side], med_cpu[side] = float(np.median(sps)), float(np.median([x["steps"] / x["cpu"] for x in runs]))
        ev = np.mean([x["eval"] for x in runs], axis=0)  # per seed, averaged over rounds
        print(f"{side:6} {med[side]:15.0f} {max(sps):8.0f} {med_cpu[side]:19.0f} {ci95(ev):>48}")
        if side == "pgrun":
            tr = np.mean([x["train"] for x in runs], axis=0)
            print(f"{'':6} training return, last 5 iterations: {ci95(tr)}; "
                  f"seeds with eval ≥ 475: {int(np.sum(ev >= 475))}/{SEEDS}")
        else:
            print(f"{'':6} seeds with eval ≥ 475: {int(np.sum(ev >= 475))}/{SEEDS}")
    if len(med) == 2:
        print(f"\nratio pgrun / rejax: env-steps/s (wall, medians) {med['pgrun'] / med['rejax']:.2f}; "
              f"env-steps per CPU-second (medians) {med_cpu['pgrun'] / med_cpu['rejax']:.2f}")


if __name__ == "__main__":
    main()
