"""logger.wandb=true (pgrun/runner/wandb_logger.py): an offline W&B run under <run dir>/wandb/
whose history holds metrics.csv's seed means per sweep point, whose config is the run's, which a
resume continues under the same id, and which is finished (failed) on a divergence.

wandb is an optional extra (`pgrun[wandb]`, in the test extra): these tests skip without it, except
under PGRUN_REQUIRE_OPTIONAL=1 (.ci/run), where a missing plugin must not hide."""

from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np
import pytest
from helpers import optional_module
from scale_helpers import config, read_rows
from wandb_records import exit_code, history, run_record, summary

from pgrun.errors import TrainingDiverged
from pgrun.runner.loop import run

optional_module("wandb")


def _fragments(out: str) -> list[str]:
    return sorted(glob.glob(os.path.join(out, "wandb", "offline-run-*", "run-*.wandb")))


def _seed_stats(rows: list[dict], it: int, point: str | None = None) -> tuple[float, float, float]:
    x = [float(np.float32(r["return_mean"])) for r in rows
         if r["iteration"] == str(it) and (point is None or r["point"] == point)]
    return sum(x) / len(x), min(x), max(x)


def test_offline_history_holds_the_seed_means_per_point_and_resume_keeps_the_id(tmp_path):
    """The first session logs iterations 1..6 but its last checkpoint is lost (as if killed between
    logging and checkpointing): the resume recomputes 5..6 and must not log them twice."""
    out = str(tmp_path / "run")
    args = ["sweep.optimizer.lr=[0.05,0.2]", "logger.wandb=true", "optimizer.schedule=constant",
            "logger.wandb_project=pgrun-test", "checkpoint_every=2"]
    first = config(*args, "iterations=6")
    run(first, out)
    shutil.rmtree(os.path.join(out, "checkpoints", "6"))
    run(config(*args, "iterations=8", f"resume={out}"), "unused")
    files = _fragments(out)
    assert len(files) == 2  # offline: one fragment per session, both the same W&B run id
    ids = {run_record(f).run_id for f in files}
    stored = json.load(open(os.path.join(out, "loggers.json")))["wandb"]
    assert ids == {stored["id"]} and stored["last_step"] == 8
    assert run_record(files[0]).project == "pgrun-test"
    h1, h2 = history(files[0]), history(files[1])
    assert sorted(h1) == list(range(1, 7)) and sorted(h2) == [7, 8]  # 5, 6 not logged twice
    rows = read_rows(os.path.join(out, "metrics.csv"))
    for it, logged in {**h1, **h2}.items():
        for p in ("0", "1"):
            mean, lo, hi = _seed_stats(rows, it, p)
            assert logged[f"point_{p}/return_mean"] == pytest.approx(mean, rel=1e-6)
            assert logged[f"point_{p}/return_mean_min"] == pytest.approx(lo, rel=1e-6)
            assert logged[f"point_{p}/return_mean_max"] == pytest.approx(hi, rel=1e-6)
            loss = np.mean([float(np.float32(r["loss"])) for r in rows
                            if r["iteration"] == str(it) and r["point"] == p])
            assert logged[f"point_{p}/loss"] == pytest.approx(loss, rel=1e-5)
    logged_cfg = {u.key: json.loads(u.value_json) for u in run_record(files[0]).config.update if u.key != "_wandb"}
    assert logged_cfg == json.loads(json.dumps(first.to_dict()))  # the run's config, as summary.json has it
    assert [exit_code(f) for f in files] == [0, 0]


def test_no_sweep_plain_keys_and_a_divergence_finishes_the_run_failed(tmp_path):
    out = str(tmp_path / "run")
    with pytest.raises(TrainingDiverged):
        run(config("env=ParticleContinuous", "policy=gaussian_linear", "optimizer=sgd", "optimizer.lr=1e30",
                   "iterations=6", "log_every=3", "env.max_episode_steps=20", "logger.wandb=true"), out)
    (f,) = _fragments(out)
    rows = read_rows(os.path.join(out, "metrics.csv"))
    h = history(f)
    assert sorted(h) == sorted({int(r["iteration"]) for r in rows})  # up to the divergence, not past it
    for it, logged in h.items():
        assert logged["return_mean"] == pytest.approx(_seed_stats(rows, it)[0], rel=1e-6)
    assert exit_code(f) == 1


@pytest.mark.skipif("WANDB_API_KEY" in os.environ, reason="a W&B login is configured here")
def test_online_without_a_login_exits_2_before_any_metrics(tmp_path):
    from cli_helpers import TINY, run_cli

    out = tmp_path / "run"
    p = run_cli(*TINY, "logger.wandb=true", "logger.wandb_mode=online", f"hydra.run.dir={out}",
                env={"HOME": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path / ".config")})
    assert p.returncode == 2, p.stderr[-3000:]
    assert "wandb login" in p.stderr and "logger.wandb_mode=offline" in p.stderr and "Traceback" not in p.stderr
    assert not (out / "metrics.csv").exists()


def test_eval_of_a_wandb_run_needs_no_wandb(tmp_path, monkeypatch):
    """pgrun-eval loads the run's config with every logger off: it logs nothing and needs none."""
    import importlib.util

    from pgrun.config.schema import EvalConfig
    from pgrun.errors import ConfigError
    from pgrun.runner.evaluate import evaluate

    out = str(tmp_path / "run")
    run(config("logger.wandb=true", "iterations=2"), out)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match="pgrun\\[wandb\\]"):
        config("logger.wandb=true")  # training would need it
    assert evaluate(out, EvalConfig(episodes=2))["episodes"] == 2
    assert len(_fragments(out)) == 1  # no second W&B session


def test_ctrl_c_finishes_the_wandb_run_as_interrupted(tmp_path, monkeypatch):
    """SIGINT after the first chunk: the loop checkpoints and stops; the W&B run holds that chunk
    and is finished (failed) with pgrun_status=interrupted."""
    import signal

    from pgrun.runner import loop

    real = loop.MetricsWriter.write_rows

    def write_then_interrupt(self, rows):
        real(self, rows)
        os.kill(os.getpid(), signal.SIGINT)  # DeferredInterrupt records it; the loop stops after this chunk

    monkeypatch.setattr(loop.MetricsWriter, "write_rows", write_then_interrupt)
    out = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        run(config("logger.wandb=true"), out)
    (f,) = _fragments(out)
    assert sorted(history(f)) == [1, 2]  # the first chunk (log_every=2)
    assert exit_code(f) == 1 and summary(f)["pgrun_status"] == "interrupted"
