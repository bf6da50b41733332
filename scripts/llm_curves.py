"""Learning curves of the LLM estimator presets on a Tokens task, with 95% bootstrap CIs over seeds.

    python scripts/llm_curves.py --out runs/llm_curves [--task reverse] [--seeds 4] [--iterations 150]
        [--presets rloo grpo dr_grpo dapo gspo reinforce_pp] [--set KEY=VALUE ...]

Each preset is one multi-seed run (`pgrun.runner.loop.run`, the settings of
`+experiment=llm/reverse_rloo` with `estimator=<preset>`); the curves of exact match and return
and the final-score table (last 10 iterations, mean with its 95% bootstrap CI) come from
pgrun-plot's functions (`pgrun.report.plot.plot_runs`). `--task add` uses V = 10, H = 4.
"""

from __future__ import annotations

import argparse
import os
import time

PRESETS = ("rloo", "grpo", "dr_grpo", "dapo", "gspo", "reinforce_pp")
BASE = ["env=Tokens", "env.prompt_len=4", "policy=transformer", "optimizer=adam", "optimizer.lr=0.003",
        "+env.params.token_reward=0.5", "episodes_per_iteration=64", "estimator.group_size=4", "gamma=1.0",
        "progress=false"]
TASKS = {"reverse": ["env.task=reverse", "env.vocab=8", "env.horizon=5"],
         "add": ["env.task=add", "env.vocab=10", "env.horizon=4"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--task", choices=sorted(TASKS), default="reverse")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--iterations", type=int, default=150)
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for every run")
    a = p.parse_args(argv)
    from pgrun.config import compose, load
    from pgrun.report.plot import markdown_table, plot_runs
    from pgrun.runner.loop import run

    dirs = []
    for name in a.presets:
        out = os.path.join(a.out, f"{a.task}_{name}")
        t0 = time.perf_counter()
        cfg = load(compose([*BASE, *TASKS[a.task], f"estimator={name}", f"num_seeds={a.seeds}",
                            f"iterations={a.iterations}", f"log_every={max(1, a.iterations // 5)}", *a.set]))
        run(cfg, out)
        print(f"{name}: {time.perf_counter() - t0:.0f} s wall clock", flush=True)
        dirs.append(out)
    figs = os.path.join(a.out, "plots")
    summary = {}
    for y in ("exact_match", "return_mean"):
        res = plot_runs(dirs, out_dir=os.path.join(figs, y), group_by=["estimator.name"], y=y,
                        title=f"Tokens {a.task}: {y} ({a.seeds} seeds, 95% bootstrap CI)", formats=("png",))
        summary[y] = res["scores"]
        print(f"\n{y} (last 10 iterations):\n" + markdown_table(res["scores"]))
    print("figures:", figs)


if __name__ == "__main__":
    main()
