"""The lecture report: reproduce the lectures' comparisons, one section per claim group.

    python scripts/lecture_report.py --out report/ [--quick] [--sections raw_returns causality ...]

Writes report.md (each section: the lecture's claim, the setup, the measured numbers, and
HOLDS / DOES NOT HOLD per claim), report.json, report.html (all of it in one self-contained
file: figures embedded, claim table, sizes, commands, versions, commit), and the figures (figures/, diagnose/*/,
runs/*/) into the output directory. Sections:

  raw_returns  1. notes 03 "Raw Returns" bandit: raw pushes, baseline signs, variance
  causality    2. reward-to-go vs total return: variance and unbiasedness (Chain, γ = 1, exact ∇J)
  discounting  2b. reward-to-go for the discounted J: biased without γ^t, unbiased with it (Chain, γ = 0.9)
  baselines    3. batch mean, learned V(s), optimal b*: unbiased, variance ordering
  curves       4. CartPole learning curves of five estimators, 16 seeds each
  policies     5. softmax_linear vs mlp (CartPole); fixed vs learned σ (ParticleContinuous)
  off_policy   6. importance weights vs horizon: trajectory vs per-decision
  off_policy_updates
               6b. several updates per batch (K epochs) with and without a KL constraint
  bc           7. equal rewards: policy gradient = behavioural cloning (exact relations)

Must-hold claims (unbiasedness, the bias of reward-to-go without γ^t at γ = 0.9 and its removal
with γ^t, reward-to-go variance reduction at θ = 0, IS weight growth,
TRPO's KL ≤ δ on every update, the exact identities of sections 1 and 7) make `lecture_report`
raise `ReportFailed` (exit status 1 from the script) after the report is written; the other claims are measured and
reported as they come out. `--quick` runs the same claims with fewer batches, seeds and
iterations (for CI).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from pgrun.report.claims import Section

SIZES = {
    "full": {"episodes": 16, "bandit_batches": 2000, "chain_batches": 1000, "critic_batches": 64,
             "discount_batches": 2048,
             "critic_steps": 300, "bootstrap": 1000, "trained_iterations": 25, "is_episodes": 8192,
             "bc_batches": 512, "seeds": 16, "iterations": 100,
             "upd_seeds": 16, "upd_iterations": 50, "upd_epochs": (1, 4, 16), "upd_ppo_epochs": (4, 16),
             "llm_batches": 8000, "llm_length_iterations": 300, "llm_length_seeds": 8},
    "quick": {"episodes": 16, "bandit_batches": 400, "chain_batches": 300, "critic_batches": 16,
              "discount_batches": 512,
              "critic_steps": 200, "bootstrap": 400, "trained_iterations": 0, "is_episodes": 2048,
              "bc_batches": 200, "seeds": 4, "iterations": 20,
              "upd_seeds": 8, "upd_iterations": 30, "upd_epochs": (1, 16), "upd_ppo_epochs": (),
              "llm_batches": 3000, "llm_length_iterations": 40, "llm_length_seeds": 3},
}
SECTIONS = ("raw_returns", "causality", "discounting", "baselines", "curves", "policies", "off_policy",
            "off_policy_updates", "bc", "llm")


class ReportFailed(RuntimeError):
    """A must-hold claim did not hold; the report was written all the same."""


def section_functions() -> dict:
    from pgrun.report import lecture_curves, lecture_gradients, lecture_llm, lecture_offpolicy
    return {
        "raw_returns": lecture_gradients.raw_returns,
        "causality": lecture_gradients.causality,
        "discounting": lecture_gradients.discounting,
        "baselines": lecture_gradients.baselines,
        "curves": lecture_curves.estimators_curves,
        "policies": lecture_curves.policies_curves,
        "off_policy": lecture_offpolicy.off_policy,
        "off_policy_updates": lecture_offpolicy.off_policy_updates,
        "bc": lecture_gradients.behavioral_cloning,
        "llm": lecture_llm.llm_estimators,
    }


def lecture_report(out_dir: str, quick: bool = False, sections=None, seed: int = 0, sizes: dict | None = None,
                   fail: bool = True) -> dict:
    """Run the sections, write report.md / report.json into out_dir, return the summary.

    sizes: overrides of SIZES["quick" | "full"] (e.g. fewer batches in tests).
    Raises ReportFailed when a must-hold claim does not hold (and fail is True).
    """
    from pgrun.runner.cache import enable_compilation_cache

    enable_compilation_cache()
    t0 = time.perf_counter()
    mode = "quick" if quick else "full"
    sz = dict(SIZES[mode], **(sizes or {}))
    os.makedirs(out_dir, exist_ok=True)
    ctx = {"out_dir": out_dir, "sizes": sz, "seed": int(seed), "cache": {}}
    funcs = section_functions()
    chosen = list(sections or SECTIONS)
    unknown = sorted(set(chosen) - set(funcs))
    if unknown:
        raise KeyError(f"unknown report section(s) {unknown}; valid: {', '.join(SECTIONS)}")
    done: list[Section] = []

    def summarize() -> dict:
        failed = [(s.key, c) for s in done for c in s.claims if c.must_hold and not c.holds]
        return {
            "mode": mode, "seed": int(seed), "sizes": sz, "seconds": round(time.perf_counter() - t0, 1),
            "claims": sum(len(s.claims) for s in done), "holds": sum(c.holds for s in done for c in s.claims),
            "must_hold_failed": [f"{k}: {c.text}" for k, c in failed],
            "sections_pending": chosen[len(done):],
            "sections": [s.to_json() for s in done],
        }

    for key in chosen:
        t = time.perf_counter()
        print(f"[report] {key} ...", file=sys.stderr, flush=True)
        sec = funcs[key](ctx)
        sec.seconds = time.perf_counter() - t
        done.append(sec)
        print(f"[report] {key}: {sum(c.holds for c in sec.claims)}/{len(sec.claims)} claims hold "
              f"({sec.seconds:.1f} s)", file=sys.stderr, flush=True)
        write_report(out_dir, done, summarize())  # after every section: partial results survive
    summary = summarize()
    if summary["must_hold_failed"] and fail:
        raise ReportFailed("must-hold claim(s) did not hold:\n  " + "\n  ".join(summary["must_hold_failed"]))
    return summary


def write_report(out_dir: str, sections: list[Section], summary: dict) -> None:
    lines = ["# Lecture report: policy-gradient claims, measured", "",
             f"Mode: **{summary['mode']}** (seed {summary['seed']}); {summary['holds']} of {summary['claims']} claims "
             f"hold; must-hold claims failed: {len(summary['must_hold_failed'])}; "
             f"total time {summary['seconds']:.0f} s.",
             "", "Reproduce: `python scripts/lecture_report.py --out <dir>" + (" --quick" if summary["mode"] == "quick"
                                                                             else "") + "`.", "",
             "| section | claims holding | must-hold failures | time (s) |", "|---|---:|---:|---:|"]
    for s in sections:
        bad = sum(c.must_hold and not c.holds for c in s.claims)
        lines.append(f"| {s.title} | {sum(c.holds for c in s.claims)}/{len(s.claims)} | {bad} | {s.seconds:.0f} |")
    if summary["must_hold_failed"]:
        lines += ["", "**Must-hold claims that DO NOT HOLD:**", ""] + [f"- {m}" for m in summary["must_hold_failed"]]
    if summary.get("sections_pending"):
        lines += ["", f"_Sections still running or not run: {', '.join(summary['sections_pending'])}._"]
    lines += ["", f"Sizes: `{json.dumps(summary['sizes'])}`", ""]
    lines += [s.markdown() for s in sections]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(summary, f, indent=1, default=float)
        f.write("\n")
    from pgrun.report.lecture_html import write_lecture_html
    write_lecture_html(out_dir, sections, summary)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="lecture_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="lecture_report", help="output directory (default: lecture_report)")
    p.add_argument("--quick", action="store_true", help="fewer batches/seeds/iterations, same claims (CI)")
    p.add_argument("--sections", nargs="+", default=None, choices=SECTIONS, help="run only these sections")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        s = lecture_report(a.out, a.quick, a.sections, a.seed)
    except ReportFailed as e:
        print(f"lecture_report: FAILED: {e}\nreport written to {a.out}/report.md", file=sys.stderr)
        sys.exit(1)
    print(f"lecture_report: {s['holds']}/{s['claims']} claims hold, no must-hold failures; "
          f"{s['seconds']:.0f} s; wrote {a.out}/report.md")


if __name__ == "__main__":
    main()
