"""The training program (pgrun.train.program) and the host loop (pgrun.runner.loop): it learns, it compiles once,
it is deterministic, and the NaN guard stops a diverging run with the earlier metrics kept."""

import csv
import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import make_config

from pgrun.errors import TrainingDiverged
from pgrun.runner.loop import run
from pgrun.runner.metrics import COLUMNS
from pgrun.train.program import init_seeds, make_train


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------
# make_train + jit(vmap(chunk)): learns CartPole, compiled once
# ---------------------------------------------------------------------------------------------

LEARN = ["env=CartPole", "policy=softmax_linear", "estimator=baseline", "optimizer=adam", "optimizer.lr=0.05",
         "iterations=80", "log_every=10", "num_seeds=8", "episodes_per_iteration=8", "env.max_episode_steps=200",
         "seed=0"]


@pytest.fixture(scope="module")
def trained():
    cfg = make_config(*LEARN)
    trainer = make_train(cfg)
    traces = {"chunk": 0}

    def counted_chunk(state):  # Python side effect: runs once per trace, never per call
        traces["chunk"] += 1
        return trainer.chunk(state)

    seeds = [int(cfg.seed) + i for i in range(int(cfg.num_seeds))]
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    state = init_seeds(trainer.init, keys)
    chunk = jax.jit(jax.vmap(counted_chunk))
    chunks = []
    for _ in range(int(cfg.iterations) // int(cfg.log_every)):
        state, m = chunk(state)
        chunks.append(jax.device_get(m))
    metrics = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}  # [seeds, iterations]
    return {"cfg": cfg, "metrics": metrics, "traces": traces["chunk"], "chunk": chunk, "state": state}


def test_learns_cartpole(trained):
    """A linear softmax policy with the leave-one-out baseline balances the pole within 80 updates
    of 8 episodes (≈ 3 s compile, < 1 s run). Measured over 8 seed blocks of 8 seeds: mean of the
    last 10 iterations 150-200 per block, worst seed > 100; a random policy scores ≈ 22."""
    r = trained["metrics"]["return_mean"]  # [8 seeds, 80 iterations]
    assert r.shape == (8, 80)
    first = r[:, 0].mean()
    final = r[:, -10:].mean(axis=1)
    assert first < 40, first  # starts from the uniform policy (θ = 0)
    assert final.mean() > 120, final
    assert final.min() > 60, final


def test_chunk_compiles_once(trained):
    """8 chunk calls, one trace and one cache entry: no retracing between chunks."""
    assert trained["traces"] == 1
    assert trained["chunk"]._cache_size() == 1
    # calling once more with the (donation-free) state still does not retrace
    trained["chunk"](trained["state"])
    assert trained["traces"] == 1 and trained["chunk"]._cache_size() == 1


def test_in_program_metrics_are_consistent(trained):
    m = trained["metrics"]
    n_eps = 8
    assert np.all(m["active"]) and np.all(m["finite"])
    np.testing.assert_array_equal(m["iteration"], np.broadcast_to(np.arange(1, 81), (8, 80)))
    np.testing.assert_array_equal(m["episodes"], n_eps)
    # CartPole pays 1 per step: undiscounted return = length, and env_steps accumulates the lengths
    np.testing.assert_allclose(m["return_mean"], m["length_mean"], rtol=1e-6)
    steps = np.rint(m["length_mean"] * n_eps).astype(np.int64)
    np.testing.assert_array_equal(m["env_steps"], np.cumsum(steps, axis=1))
    assert np.all(m["return_min"] <= m["return_mean"] + 1e-4) and np.all(m["return_mean"] <= m["return_max"] + 1e-4)
    assert np.all(m["return_max"] <= 200) and np.all(m["return_min"] >= 1)
    assert np.all(m["entropy"] <= np.log(2) + 1e-6) and np.all(m["entropy"] > 0)
    assert np.all(np.isnan(m["value_loss"]))  # no critic for estimator=baseline
    assert np.all(m["grad_norm"] > 0)


# ---------------------------------------------------------------------------------------------
# run(): determinism, seeds, summary figures
# ---------------------------------------------------------------------------------------------

SMALL = ["env=CartPole", "policy=softmax_linear", "estimator=reward_to_go", "optimizer=adam", "optimizer.lr=0.05",
         "iterations=5", "log_every=2", "num_seeds=2", "episodes_per_iteration=4", "env.max_episode_steps=50",
         "progress=false"]


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    out = {}
    for name, extra in [("a", ["seed=0"]), ("b", ["seed=0"]), ("c", ["seed=7"])]:
        d = tmp_path_factory.mktemp(f"run_{name}")
        summary = run(make_config(*SMALL, *extra), str(d))
        out[name] = {"rows": read_csv(d / "metrics.csv"), "summary": summary,
                     "summary_file": json.loads((d / "summary.json").read_text())}
    return out


def _strip_wall(rows):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def test_same_config_and_seed_is_bit_identical(small_runs):
    a, b = small_runs["a"]["rows"], small_runs["b"]["rows"]
    assert len(a) == 5 * 2
    assert _strip_wall(a) == _strip_wall(b)  # exact float reprs: bit-identical
    assert small_runs["a"]["summary"]["final_return_mean"] == small_runs["b"]["summary"]["final_return_mean"]


def test_different_seeds_differ(small_runs):
    a, c = small_runs["a"]["rows"], small_runs["c"]["rows"]
    assert {r["seed"] for r in a} == {"0", "1"} and {r["seed"] for r in c} == {"7", "8"}
    fields = ["env_steps", "return_mean", "loss", "grad_norm"]
    pick = lambda rows, s: [tuple(r[f] for f in fields) for r in rows if r["seed"] == s]  # noqa: E731
    assert pick(a, "0") != pick(a, "1")  # the seeds within one program
    assert pick(a, "0") != pick(c, "7")  # and across runs


def test_metrics_csv_rows_and_summary_figures(small_runs):
    """One row per (iteration, seed) in order, even though 5 iterations do not fill the last chunk
    of 2; the summary's figures recomputed from the csv."""
    rows = small_runs["a"]["rows"]
    assert list(rows[0].keys()) == COLUMNS
    assert [(int(r["iteration"]), int(r["seed"])) for r in rows] == [(i, s) for i in range(1, 6) for s in (0, 1)]
    s = small_runs["a"]["summary_file"]
    assert s["status"] == "completed" and s["iterations"] == 5 and s["seeds"] == [0, 1]
    per_seed = {sd: np.mean([float(r["return_mean"]) for r in rows if r["seed"] == str(sd)][-10:]) for sd in (0, 1)}
    assert s["final_return_mean"] == pytest.approx(np.mean(list(per_seed.values())), rel=1e-6)
    x = np.array(list(per_seed.values()))
    # the percentile bootstrap of a mean of two values: resampled means a, (a+b)/2, b with probabilities
    # ¼, ½, ¼, so its 2.5 % and 97.5 % percentiles are the two values themselves
    assert s["final_return_ci95"] == pytest.approx([x.min(), x.max()], rel=1e-6)
    last = {sd: int([r for r in rows if r["seed"] == str(sd)][-1]["env_steps"]) for sd in (0, 1)}
    assert s["env_steps"] == sum(last.values())
    assert s["first_solved_iteration"] == {"0": None, "1": None}  # 50-step cap < 475


# ---------------------------------------------------------------------------------------------
# NaN guard
# ---------------------------------------------------------------------------------------------

DIVERGE = ["env=ParticleContinuous", "policy=gaussian_linear", "estimator=reward_to_go", "optimizer=sgd",
           "optimizer.lr=1e30", "iterations=6", "num_seeds=2", "episodes_per_iteration=4",
           "env.max_episode_steps=20", "progress=false"]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """Chunks of 3 iterations: the divergence (at iteration 2 here) falls inside a chunk, so the
    rows of that chunk must be cut at it."""
    d = tmp_path_factory.mktemp("diverged")
    with pytest.raises(TrainingDiverged) as e:
        run(make_config(*DIVERGE, "log_every=3"), str(d))
    return str(e.value), read_csv(d / "metrics.csv"), json.loads((d / "summary.json").read_text())


def test_absurd_learning_rate_raises_training_diverged(diverged):
    msg, rows, summary = diverged
    m = re.search(r"at iteration (\d+)", msg)
    assert m, msg
    k = int(m.group(1))
    assert k >= 2  # the first update is finite; the step it takes (lr = 1e30) is not
    # metrics.csv holds every row before iteration k, for every seed, and none from k on
    assert [(int(r["iteration"]), int(r["seed"])) for r in rows] == [(i, s) for i in range(1, k) for s in (0, 1)]
    for r in rows:
        assert all(math.isfinite(float(r[c])) for c in ("return_mean", "loss", "grad_norm", "entropy"))
    assert summary["status"] == "diverged" and summary["iterations"] == k - 1
    assert "optimizer.lr" in msg  # tells the user what to change


def test_diverged_summary_env_steps_match_kept_rows(diverged):
    msg, rows, summary = diverged
    last = {}
    for r in rows:
        last[r["seed"]] = int(r["env_steps"])
    assert summary["env_steps"] == sum(last.values())


@pytest.mark.slow  # 10 s cold; like the other documented presets' learning checks (scripts/learning_checks.py)
def test_cartpole_fast_preset_solves_cartpole(tmp_path):
    """`+experiment=cartpole_fast` (docs/benchmarks.md: >= 7/8 seeds solved after ~120-160k env
    steps per seed, 8/8 at the end of each of 6 seed blocks): seeds 0-7 end with >= 7 of 8 solved
    (mean return of the last 10 iterations >= 475) within its 60 iterations. The fast suite checks
    that the preset is the benchmarked command (tests/config/test_experiments.py)."""
    summary = run(make_config("+experiment=cartpole_fast", "progress=false", "checkpoint_every=0"), str(tmp_path))
    assert summary["iterations"] == 60
    assert summary["seeds_solved_final"] >= 7, summary
