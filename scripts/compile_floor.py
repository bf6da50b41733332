"""How small can the default command's compiled program be? A floor for issue 14's compile goal.

The smallest program that does the default command's work (`estimator=baseline env=CartPole`:
8 seeds vmapped, 16 episodes of at most 500 steps per iteration, the 64x64 tanh MLP softmax
policy, reward-to-go minus the batch mean, one Adam step with the linear decay, a chunk of 10
iterations in one `lax.scan`), written the PureJaxRL way: one 500-step `lax.scan` per rollout
(no early exit, no chunked buffers), one key split per iteration, Flax's default init (no QR),
no metrics but the mean return, no finiteness checks, no `active` select. It uses pgrun's own
CartPole port (the env is not what is being measured).

It prints the cold compile (its own process, persistent cache off: trace, lower, XLA), the
kernels XLA made (fusions), the run time of 100 iterations and the last return, and the same
figures for pgrun's own chunk of the default command (`--which pgrun`: built as pgrun.runner.loop
builds it, `jax.jit(jax.vmap(trainer.chunk))` on the initial state of 8 seeds); with
`--pgrun-run-s S` also the minimal program's compile over S, the figure the issue's goal (<= 0.5)
is about. `scripts/bench_peers.py --only floor` runs both next to pgrun's own default command.

`--which ablations` compiles pgrun's chunk with one of its features taken out at a time (each in a
fresh process; the patches below are for measuring only, the programs they make are not pgrun's):
`active` (the select that freezes the state past the last iteration), `finite` (the finiteness
check of every parameter), `sliced` (the time slices of the gradient: one full-batch gradient),
`onescan` (the rollout as one scan over the time limit instead of 16-step early-exit chunks),
`unsafe_rbg` (key splits by RngBitGenerator instead of threefry: JAX_DEFAULT_PRNG_IMPL), `update`
(rollouts only), and `active+finite+unsafe_rbg`. Its `run` is the first chunk's 10 iterations
(short episodes).

    python scripts/compile_floor.py [--which minimal|pgrun|both|ablations] [--iterations 100]
        [--pgrun-run-s 2.9] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SEEDS, EPISODES, T, LOG_EVERY, GAMMA, LR = 8, 16, 500, 10, 0.99, 3e-3


def make_chunk(iterations: int):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from pgrun.envs import reset, step
    from pgrun.envs.registry import make_env

    env = make_env("CartPole")
    params_env = env.default_params if hasattr(env, "default_params") else None

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.tanh(nn.Dense(64)(x))
            x = nn.tanh(nn.Dense(64)(x))
            return nn.Dense(2)(x)

    net = MLP()
    tx = optax.adam(optax.linear_schedule(LR, 0.0, iterations))

    def init(key):
        params = net.init(key, jnp.zeros((4,)))
        return params, tx.init(params), key

    def iteration(carry, _):
        params, opt, key = carry
        key, k_reset, k_act = jax.random.split(key, 3)
        state, obs = jax.vmap(lambda k: reset(env, params_env, k))(jax.random.split(k_reset, EPISODES))

        def body(c, xs):
            state, obs, alive = c
            t, k = xs
            logits = net.apply(params, obs)
            action = jax.random.categorical(k, logits)
            out = jax.vmap(lambda s, a: step(env, params_env, s, a, k, t, T))(state, action)
            done = out.terminated | out.truncated
            return (out.state, out.obs, alive & ~done), (obs, action, jnp.where(alive, out.reward, 0.0), alive)

        _, (o, a, r, valid) = jax.lax.scan(body, (state, obs, jnp.ones(EPISODES, bool)),
                                           (jnp.arange(T), jax.random.split(k_act, T)))
        rtg = jax.lax.scan(lambda g, x: (x + GAMMA * g, x + GAMMA * g), jnp.zeros(EPISODES), r, reverse=True)[1]
        v = valid.astype(jnp.float32)
        adv = (rtg - jnp.sum(rtg * v) / jnp.sum(v)) * v

        def loss(p):
            logp = jax.nn.log_softmax(net.apply(p, o))
            return -jnp.sum(jnp.take_along_axis(logp, a[..., None], -1)[..., 0] * adv) / EPISODES

        g = jax.grad(loss)(params)
        u, opt = tx.update(g, opt, params)
        return (optax.apply_updates(params, u), opt, key), jnp.sum(r) / EPISODES

    def chunk(carry):
        return jax.lax.scan(iteration, carry, None, length=LOG_EVERY)

    return init, chunk


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


ABLATIONS = ("active", "finite", "sliced", "onescan", "unsafe_rbg", "update", "active+finite+unsafe_rbg")


def pgrun_chunk(without: tuple[str, ...] = ()):
    """(initial state, chunk) of the default command, as pgrun.runner.loop builds them; `without`
    takes features out (ABLATIONS; unsafe_rbg is set by the caller's environment)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pgrun.rollout.episodes as episodes
    import pgrun.train.program as program
    from pgrun.config import compose, load
    from pgrun.core.estimators import pg_loss
    from pgrun.train.sweep import init_runs, make_layout

    if "finite" in without:
        program.tree_all_finite = lambda tree: jnp.bool_(True)
    if "sliced" in without:
        program.pg_value_and_grad = lambda params, policy, batch, adv, c, rows=None: jax.value_and_grad(
            pg_loss, has_aux=True)(params, policy, batch, adv, c)
    if "onescan" in without:
        rollout = episodes.rollout_episodes
        program.rollout_episodes = lambda *a, **k: rollout(*a, **{**k, "chunk": a[6]})  # chunk = max_steps
    cfg = load(compose(["estimator=baseline", "env=CartPole"]))
    trainer = program.make_train(cfg)
    layout = make_layout(cfg)
    keys = np.stack([np.asarray(jax.random.PRNGKey(s)) for s in layout.run_seeds])
    state = init_runs(trainer, keys, layout.values())
    chunk = trainer.chunk
    if "active" in without:
        def chunk(s):
            return jax.lax.scan(lambda s, _: trainer.update(*trainer.sample(s)), s, None, length=LOG_EVERY)
    if "update" in without:
        def chunk(s):
            def step(s, _):
                s, batch = trainer.sample(s)
                return s, {"return_mean": batch.reward.sum(0).mean()}
            return jax.lax.scan(step, s, None, length=LOG_EVERY)
    return state, chunk


def measure(iterations: int, which: str = "minimal") -> dict:
    import jax
    import numpy as np

    jax.config.update("jax_enable_compilation_cache", False)
    if which == "pgrun" or which.startswith("without:"):
        carry, chunk = pgrun_chunk(tuple(which.partition(":")[2].split("+")) if ":" in which else ())
    else:
        init, chunk = make_chunk(iterations)
        carry = jax.jit(jax.vmap(init))(jax.random.split(jax.random.PRNGKey(0), SEEDS))
    program = jax.jit(jax.vmap(chunk))
    t0, c0 = time.perf_counter(), cpu_s()
    traced = program.trace(carry)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile()
    t3, c3 = time.perf_counter(), cpu_s()
    text = compiled.as_text()
    fusions = len(re.findall(r"^\s*(?:ROOT )?%?\S+ = \S+ fusion\(", text, re.M))
    t4 = time.perf_counter()
    for _ in range(iterations // LOG_EVERY):
        carry, out = compiled(carry)
    ret = np.asarray(out["return_mean"] if isinstance(out, dict) else out)
    t5 = time.perf_counter()
    return {"which": which, "trace_s": t1 - t0, "lower_s": t2 - t1, "xla_s": t3 - t2, "compile_s": t3 - t0,
            "compile_cpu_s": c3 - c0, "fusions": fusions, "while_loops": text.count(" while("),
            "run_s": t5 - t4, "final_return": float(ret[:, -1].mean()), "iterations": iterations}


def in_subprocess(which: str, iterations: int) -> dict:
    """`measure` in a fresh interpreter (nothing compiled or traced before it)."""
    import subprocess

    env = dict(os.environ)
    if "unsafe_rbg" in which:
        env["JAX_DEFAULT_PRNG_IMPL"] = "unsafe_rbg"
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--which", which, "--iterations",
                          str(iterations), "--json"], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(m: dict) -> str:
    removed = m["which"].partition(":")[2].replace("unsafe_rbg", "threefry splits (unsafe_rbg)")
    name = {"minimal": "minimal default-command program", "pgrun": "pgrun's default chunk"}.get(
        m["which"], f"pgrun's chunk without {removed}")
    return (f"{name}: compile {m['compile_s']:.2f} s (trace {m['trace_s']:.2f}, lower {m['lower_s']:.2f}, XLA "
            f"{m['xla_s']:.2f}; {m['compile_cpu_s']:.2f} CPU s), {m['fusions']} fusions, {m['while_loops']} while "
            f"loops; run {m['run_s']:.2f} s for {m['iterations']} iterations; final return {m['final_return']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--which", default="both",
                    help="minimal | pgrun | both | ablations | without:<a>[+<b>...] (a of ABLATIONS)")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--pgrun-run-s", type=float, default=None, help="pgrun default command's run_s to divide by")
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench_peers)")
    args = ap.parse_args()
    if args.which == "ablations":
        args.iterations = LOG_EVERY
        ms = [in_subprocess(w, args.iterations) for w in ("pgrun", *(f"without:{a}" for a in ABLATIONS))]
        if not args.json:
            for m in ms:
                print(describe(m))
            return
    elif args.which == "both":
        ms = [in_subprocess(w, args.iterations) for w in ("pgrun", "minimal")]
    elif "unsafe_rbg" in args.which and os.environ.get("JAX_DEFAULT_PRNG_IMPL") != "unsafe_rbg":
        ms = [in_subprocess(args.which, args.iterations)]  # which sets the PRNG before JAX starts
    else:
        import pgrun  # noqa: F401  (the same PRNG and XLA options as a pgrun run)

        ms = [measure(args.iterations, args.which)]
    if args.json:
        print(json.dumps(ms[0] if len(ms) == 1 else ms))
        return
    for m in ms:
        print(describe(m))
    if len(ms) == 2:
        p, q = ms
        print(f"pgrun / minimal: compile {p['compile_s'] / q['compile_s']:.2f}x, fusions "
              f"{p['fusions'] / q['fusions']:.2f}x, run {p['run_s'] / q['run_s']:.2f}x")
    if args.pgrun_run_s:
        m = ms[-1]
        print(f"minimal compile / pgrun's run time {args.pgrun_run_s:.2f} s = {m['compile_s'] / args.pgrun_run_s:.2f}x "
              f"(goal <= 0.5x)")


if __name__ == "__main__":
    main()
