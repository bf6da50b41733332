"""Tokens generated per second in training (rollout + update, all seeds in one program) on env=Tokens,
for the transformer and the GRU at a few sizes (docs/llm.md).

For each (policy, width, layers): compile `jit(vmap(chunk))` of `pgrun env=Tokens estimator=rloo`,
run one warm-up chunk, then time `--chunks` chunks; a generated token is a valid step (EOS
included). Prints one JSON line per configuration: compile seconds, tokens/s, episodes/s.

Usage: python scripts/bench_tokens.py [--seeds 8] [--chunks 3] [--task reverse] [--quick]
Measure on an idle machine: the figures scale with whatever else the CPU is doing.
"""

from __future__ import annotations

import argparse
import json
import time

SIZES = [("transformer", 32, 1), ("transformer", 64, 1), ("transformer", 64, 2), ("gru", 32, 1), ("gru", 64, 1)]


def bench(policy: str, width: int, layers: int, seeds: int, chunks: int, task: str, log_every: int) -> dict:
    import jax
    from bench import timed_steps  # scripts/ is on sys.path when a script runs

    from pgrun.config import compose, load
    from pgrun.train.program import init_seeds, make_train

    cfg = load(compose(["env=Tokens", f"env.task={task}", f"policy={policy}", f"policy.width={width}",
                        f"policy.layers={layers}", "estimator=rloo", "episodes_per_iteration=64", "gamma=1.0",
                        f"num_seeds={seeds}", "iterations=100000", f"log_every={log_every}"]))
    tr = make_train(cfg)
    state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), seeds))
    t0 = time.perf_counter()
    chunk = jax.jit(jax.vmap(tr.chunk), donate_argnums=0).lower(state).compile()
    compile_s = time.perf_counter() - t0
    state, m = chunk(state)
    tokens, dt = timed_steps(chunk, state, m, chunks)
    episodes = chunks * log_every * seeds * cfg.episodes_per_iteration
    return {"policy": policy, "width": width, "layers": layers, "seeds": seeds, "task": task,
            "compile_s": round(compile_s, 2), "tokens_per_s": round(tokens / dt),
            "episodes_per_s": round(episodes / dt),
            "iterations_per_s": round(chunks * log_every / dt, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--chunks", type=int, default=3)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--task", default="reverse")
    ap.add_argument("--quick", action="store_true", help="only the smallest transformer and GRU")
    args = ap.parse_args()
    sizes = [SIZES[0], SIZES[3]] if args.quick else SIZES
    for policy, width, layers in sizes:
        print(json.dumps(bench(policy, width, layers, args.seeds, args.chunks, args.task, args.log_every)), flush=True)


if __name__ == "__main__":
    main()
