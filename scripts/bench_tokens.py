"""Tokens generated per second in training (rollout + update, all seeds in one program) on env=Tokens,
for the transformer and the GRU at a few sizes (docs/llm.md).

For each (policy, width, layers): compile `jit(vmap(chunk))` of `pgrun env=Tokens estimator=rloo`,
run one warm-up chunk, then time `--chunks` chunks; a generated token is a valid step (EOS
included). Prints one JSON line per configuration: compile seconds, tokens/s, episodes/s.

`--cache both`: the transformer's KV cache against its recompute (`policy.kv_cache`), side by side
at widths 32/64 × layers 1/2 × (P, H) = (4, 5), (8, 16). Per size both programs are compiled, then
timed in `--rounds` alternating rounds (A B, B A, A B, ...; `--chunks` chunks per turn) so a change
in the machine's load hits both; prints per size and mode the median tokens/s over the rounds,
every round's figure, the median of the per-round ratios cache / recompute (`speedup_paired`), the
compile seconds and the 1-minute load average around the timing.
`--rollout-only` times the sampling alone (`log_every` batches per chunk with the initial parameters,
no update), to split the training figure. `--cache true|false` runs the default sizes with that setting.

Usage: python scripts/bench_tokens.py [--seeds 8] [--chunks 3] [--task reverse] [--quick]
                                      [--cache both --rounds 5 [--sizes 32x1x4x5,64x2x8x16] [--rollout-only]]
Measure on an idle machine: the figures scale with whatever else the CPU is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

SIZES = [("transformer", 32, 1), ("transformer", 64, 1), ("transformer", 64, 2), ("gru", 32, 1), ("gru", 64, 1)]
AB_SIZES = [(w, n, p, h) for p, h in ((4, 5), (8, 16)) for w in (32, 64) for n in (1, 2)]  # width, layers, P, H


def compiled(overrides: list[str], seeds: int, log_every: int, rollout_only: bool = False):
    """(compiled vmapped chunk, initial states, cfg, compile seconds) of `pgrun env=Tokens estimator=rloo`;
    rollout_only: the chunk samples `log_every` batches with the initial parameters and learns nothing."""
    import jax
    import jax.numpy as jnp

    from pgrun.config import compose, load
    from pgrun.train.program import init_seeds, make_train

    cfg = load(compose(["env=Tokens", "estimator=rloo", "episodes_per_iteration=64", "gamma=1.0",
                        f"num_seeds={seeds}", "iterations=100000", f"log_every={log_every}", *overrides]))
    tr = make_train(cfg)
    state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), seeds))

    def rollouts(state):
        def body(s, _):
            s, batch = tr.sample(s)
            return s, jnp.sum(batch.valid).astype(s.env_steps.dtype)
        state, tokens = jax.lax.scan(body, state, None, length=log_every)
        steps = state.env_steps + jnp.cumsum(tokens)
        return state._replace(env_steps=steps[-1]), {"env_steps": steps}

    t0 = time.perf_counter()
    chunk = jax.jit(jax.vmap(rollouts if rollout_only else tr.chunk), donate_argnums=0).lower(state).compile()
    return chunk, state, cfg, time.perf_counter() - t0


def bench(policy: str, width: int, layers: int, seeds: int, chunks: int, task: str, log_every: int,
          extra: list[str] | None = None) -> dict:
    from bench import timed_steps  # scripts/ is on sys.path when a script runs

    chunk, state, cfg, compile_s = compiled([f"env.task={task}", f"policy={policy}", f"policy.width={width}",
                                             f"policy.layers={layers}", *(extra or [])], seeds, log_every)
    state, m = chunk(state)
    tokens, dt = timed_steps(chunk, state, m, chunks)
    episodes = chunks * log_every * seeds * cfg.episodes_per_iteration
    return {"policy": policy, "width": width, "layers": layers, "seeds": seeds, "task": task,
            "compile_s": round(compile_s, 2), "tokens_per_s": round(tokens / dt),
            "episodes_per_s": round(episodes / dt),
            "iterations_per_s": round(chunks * log_every / dt, 2), **({"overrides": extra} if extra else {})}


def ab(width: int, layers: int, prompt_len: int, horizon: int, seeds: int, chunks: int, rounds: int, task: str,
       log_every: int, rollout_only: bool = False) -> dict:
    """Cache vs recompute at one size, alternating (module docstring)."""
    from bench import timed_chunks  # scripts/ is on sys.path when a script runs

    size = [f"env.task={task}", f"env.prompt_len={prompt_len}", f"env.horizon={horizon}", "policy=transformer",
            f"policy.width={width}", f"policy.layers={layers}"]
    runs = {}
    for mode in ("recompute", "cache"):
        chunk, state, _, compile_s = compiled([*size, f"policy.kv_cache={mode == 'cache'}"], seeds, log_every,
                                              rollout_only)
        state, m = chunk(state)  # warm-up
        runs[mode] = {"chunk": chunk, "state": state, "m": m, "compile_s": compile_s, "rates": []}
    for run in runs.values():  # warm-up again once both exist (in a first run the first program's
        run["state"], run["m"] = run["chunk"](run["state"])  # round 0 was slow at every size)
    load0 = os.getloadavg()[0]
    for r in range(rounds):
        for mode in (("recompute", "cache") if r % 2 == 0 else ("cache", "recompute")):
            run = runs[mode]
            run["state"], run["m"], tokens, dt = timed_chunks(run["chunk"], run["state"], run["m"], chunks)
            run["rates"].append(tokens / dt)
    out = {"width": width, "layers": layers, "prompt_len": prompt_len, "horizon": horizon, "seeds": seeds,
           "task": task, "phase": "rollout" if rollout_only else "train",
           "load_1min": [round(load0, 1), round(os.getloadavg()[0], 1)]}
    for mode, run in runs.items():
        out[mode] = {"tokens_per_s": round(statistics.median(run["rates"])),
                     "rounds": [round(x) for x in run["rates"]], "compile_s": round(run["compile_s"], 1)}
    out["speedup"] = round(out["cache"]["tokens_per_s"] / out["recompute"]["tokens_per_s"], 2)
    # paired: cache / recompute within each round (the two ran back to back), median over the rounds
    out["speedup_paired"] = round(statistics.median(c / r for c, r in zip(runs["cache"]["rates"],
                                                                            runs["recompute"]["rates"])), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--chunks", type=int, default=3)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--task", default="reverse")
    ap.add_argument("--quick", action="store_true", help="only the smallest transformer and GRU")
    ap.add_argument("--cache", choices=["default", "true", "false", "both"], default="default",
                    help="policy.kv_cache of the transformer; both: the A/B comparison (module docstring)")
    ap.add_argument("--rounds", type=int, default=5, help="--cache both: alternating rounds per size")
    ap.add_argument("--rollout-only", action="store_true", help="--cache both: time sampling alone, no update")
    ap.add_argument("--sizes", default=None, help="--cache both: WIDTHxLAYERSxPxH,... (default: the 8 of AB_SIZES)")
    args = ap.parse_args()
    if args.cache == "both":
        sizes = ([tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")] if args.sizes else AB_SIZES)
        for width, layers, p, h in sizes:
            print(json.dumps(ab(width, layers, p, h, args.seeds, args.chunks, args.rounds, args.task,
                                args.log_every, args.rollout_only)), flush=True)
        return
    sizes = [SIZES[0], SIZES[3]] if args.quick else SIZES
    for policy, width, layers in sizes:
        extra = [f"policy.kv_cache={args.cache}"] if args.cache != "default" and policy == "transformer" else []
        print(json.dumps(bench(policy, width, layers, args.seeds, args.chunks, args.task, args.log_every, extra)),
              flush=True)


if __name__ == "__main__":
    main()
