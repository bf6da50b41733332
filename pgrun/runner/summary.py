"""summary.json's figures: final return and 95% CI across seeds (per sweep point), the first
iteration each seed solved the env, env-steps/s; shared by the JAX and the gymnasium host loops."""

from __future__ import annotations

import numpy as np

from pgrun.runner.metrics import confidence_interval


def history(rows: list[dict], layout) -> list[np.ndarray]:
    """return_mean per iteration [R] rebuilt from metrics.csv rows (for summary figures on resume)."""
    by_iter: dict[int, np.ndarray] = {}
    for r in rows:
        it = int(r["iteration"])
        arr = by_iter.setdefault(it, np.full(layout.num_runs, np.nan, np.float32))  # as computed
        j = layout.run_index(int(r.get("point") or 0), int(r["seed"]))
        arr[j] = float(r["return_mean"]) if r["return_mean"] != "" else np.nan
    return [by_iter[it] for it in sorted(by_iter)]


def final_figures(returns_by_iter, seeds, env, env_steps, run_s, layout=None) -> dict:
    out = {"run_s": round(run_s, 3), "env_steps": int(np.sum(env_steps)),
           "env_steps_per_s": float(np.sum(env_steps) / run_s) if run_s > 0 else None}
    if not returns_by_iter:
        return out
    r = np.stack(returns_by_iter)  # [iterations, runs]
    if layout is None or not layout.keys:
        out.update(return_figures(r, seeds, env))
        return out
    points = []
    for p, values in enumerate(layout.points):
        runs = np.asarray(layout.run_points) == p
        points.append({"point": p, **values, **return_figures(r[:, runs], seeds, env)})
    best = max(range(len(points)), key=lambda p: np.nan_to_num(points[p]["final_return_mean"], nan=-np.inf))
    out.update({"points": points, "best_point": best, "final_return_of": "best_point",
                "final_return_mean": points[best]["final_return_mean"],
                "final_return_ci95": points[best]["final_return_ci95"]})
    return out


def return_figures(r, seeds, env) -> dict:
    """Figures of one point: r [iterations, seeds] of return_mean."""
    out = {}
    final = r[-10:].mean(axis=0)   # per seed: mean return over the last 10 iterations
    lo, hi = confidence_interval(final)
    out.update({
        "final_return_mean": float(final.mean()), "final_return_ci95": [lo, hi],
        "final_return_per_seed": {str(s): float(v) for s, v in zip(seeds, final)},
        "solved_threshold": env.solved_threshold,
    })
    if env.solved_threshold is not None:
        first = {}
        for j, s in enumerate(seeds):
            hit = np.nonzero(r[:, j] >= env.solved_threshold)[0]
            first[str(s)] = int(hit[0]) + 1 if len(hit) else None
        out["first_solved_iteration"] = first
        out["seeds_solved_final"] = int(np.sum(final >= env.solved_threshold))
    return out


def return_label(num_points: int) -> str:
    """The progress bar's name for the latest iteration's mean return: `ret` (over seeds), and in a
    sweep `ret(mean of P points)`, which is not summary.json's best-point final_return_mean."""
    return "ret" if num_points <= 1 else f"ret(mean of {num_points} points)"


def result_line(summary: dict, run_dir: str) -> str:
    """The one line a finished run ends with: final return and its 95% CI (the best point's in a
    sweep, named with its values), seeds solved, compile and run seconds, the run directory."""
    s, where = summary, ""
    if "points" in s:
        p = s["points"][s["best_point"]]
        values = ", ".join(f"{k}={p[k]}" for k in p if k not in _POINT_FIGURES)
        where = f"best of {len(s['points'])} sweep points, point {p['point']} ({values}): "
        s = p
    ret = "final return -" if "final_return_mean" not in s else (
        f"final return {s['final_return_mean']:.2f} (95% CI {s['final_return_ci95'][0]:.2f} to "
        f"{s['final_return_ci95'][1]:.2f} over {len(s['final_return_per_seed'])} seeds, last 10 iterations)")
    if s.get("solved_threshold") is None:
        solved = "seeds solved: no threshold for this env"
    elif "seeds_solved_final" in s:
        n = len(s["final_return_per_seed"])
        solved = f"{s['seeds_solved_final']}/{n} seeds solved (>= {s['solved_threshold']:g})"
    else:
        solved = "seeds solved: -"
    return (f"{summary.get('status', 'done')} after {summary.get('iterations')} iterations: {where}{ret}; {solved}; "
            f"compile {summary.get('compile_s', 0):.1f} s, run {summary.get('run_s', 0):.1f} s; run dir {run_dir}")


_POINT_FIGURES = ("point", "final_return_mean", "final_return_ci95", "final_return_per_seed", "solved_threshold",
                  "first_solved_iteration", "seeds_solved_final")
