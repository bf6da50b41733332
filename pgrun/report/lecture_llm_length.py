"""Part of the report section `llm`: the length effect (the Dr. GRPO paper's observation) on a toy.

GRPO and Dr. GRPO train on `reverse` (P = 4, V = 8, H = 8, partial credit 0.5, transformer) for
`llm_length_iterations` iterations × `llm_length_seeds` seeds (one vmapped run each,
`pgrun.runner.loop.run`); the metrics' `length_correct` / `length_incorrect` columns (mean
completion length of the exactly-right and the wrong completions) are plotted over training.
No claim: at the report's sizes the runs are too short for the effect to be robust (docs/llm.md
has the 300-iteration measurement); the figure and the numbers are shown.
"""

from __future__ import annotations

import os

import numpy as np

from pgrun.config import compose, load
from pgrun.report import plot

LENGTH_RUN = ["env=Tokens", "env.task=reverse", "env.prompt_len=4", "env.vocab=8", "env.horizon=8",
              "+env.params.token_reward=0.5", "policy=transformer", "estimator.group_size=4",
              "episodes_per_iteration=64", "gamma=1.0", "optimizer=adam", "optimizer.lr=0.003", "progress=false"]
ESTIMATORS = {"GRPO": "grpo", "Dr. GRPO": "dr_grpo"}


def length_part(ctx) -> tuple[list[str], str | None, dict]:
    """-> (body lines, figure file or None, data {label: {column: [iterations] seed-mean}})."""
    from pgrun.runner.loop import run

    its = int(ctx["sizes"].get("llm_length_iterations", 40))
    seeds = int(ctx["sizes"].get("llm_length_seeds", 3))
    if its <= 0:
        return [], None, {}
    data: dict[str, dict[str, list[float]]] = {}
    for label, est in ESTIMATORS.items():
        cfg = load(compose([*LENGTH_RUN, f"estimator={est}", f"iterations={its}", f"num_seeds={seeds}",
                            f"seed={ctx['seed']}", "log_every=1000000"]))
        out = os.path.join(ctx["out_dir"], "runs", f"llm_length_{est}")
        os.makedirs(out, exist_ok=True)
        run(cfg, out)
        cols = plot.load_runs([out])[0].columns
        data[label] = {c: _nanmean([cols[r][c] for r in sorted(cols)]).tolist()
                       for c in ("exact_match", "length_correct", "length_incorrect")}
    last = max(1, its // 5)
    rows = [f"| {label} | {_fmt(d['length_incorrect'][:last])} → {_fmt(d['length_incorrect'][-last:])} | "
            f"{_fmt(d['length_correct'][-last:])} | {_fmt(d['exact_match'][-last:], 3)} |" for label, d in data.items()]
    body = ["", f"The length effect (reverse, P 4, V 8, H 8, partial credit 0.5, transformer, G = 4, 64 episodes per "
            f"iteration, {its} iterations × {seeds} seeds; mean over seeds of the first → last {last} iterations; "
            "no claim at this size, docs/llm.md has 300 iterations × 8 seeds):", "",
            "| estimator | length of wrong completions | length of right ones (last) | exact match (last) |",
            "|---|---|---:|---:|", *rows]
    return body, _figure(data, ctx["out_dir"]), data


def _nanmean(cols: list[np.ndarray]) -> np.ndarray:
    a = np.stack(cols)
    ok = np.isfinite(a)
    return np.where(ok.any(0), np.where(ok, a, 0).sum(0) / np.maximum(ok.sum(0), 1), np.nan)


def _fmt(v: list[float], digits: int = 2) -> str:
    a = np.asarray(v, float)
    return f"{np.nanmean(a):.{digits}f}" if np.isfinite(a).any() else "—"


def _figure(data: dict, out_dir: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for (label, d), color in zip(data.items(), ("C0", "C1")):
        x = np.arange(1, len(d["length_incorrect"]) + 1)
        ax[0].plot(x, d["length_incorrect"], color=color, label=f"{label}: wrong")
        ax[0].plot(x, d["length_correct"], color=color, ls="--", marker=".", ms=3, lw=0.8, label=f"{label}: right")
        ax[1].plot(x, d["exact_match"], color=color, label=label)
    ax[0].set_xlabel("iteration")
    ax[0].set_ylabel("completion length (mean over seeds)")
    ax[0].legend(fontsize=8)
    ax[1].set_xlabel("iteration")
    ax[1].set_ylabel("exact match")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "llm_length.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)
