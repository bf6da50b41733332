"""The closing line of a run (`result_line`), from summary dicts written out by hand."""

from __future__ import annotations

from pgrun.runner.summary import result_line, return_label

PLAIN = {"status": "completed", "iterations": 100, "seeds": [0, 1, 2], "compile_s": 3.456, "run_s": 12.04,
         "final_return_mean": 480.5, "final_return_ci95": [470.25, 490.0],
         "final_return_per_seed": {"0": 470.0, "1": 480.0, "2": 491.5}, "solved_threshold": 475.0,
         "first_solved_iteration": {"0": None, "1": 50, "2": 40}, "seeds_solved_final": 2}


def test_a_plain_run():
    assert result_line(PLAIN, "/runs/a") == (
        "completed after 100 iterations: final return 480.50 (95% CI 470.25 to 490.00 over 3 seeds, last 10 "
        "iterations); 2/3 seeds solved (>= 475); compile 3.5 s, run 12.0 s; run dir /runs/a")


def test_an_env_without_threshold_says_so():
    s = {**PLAIN, "solved_threshold": None}
    del s["first_solved_iteration"], s["seeds_solved_final"]
    assert "seeds solved: no threshold for this env" in result_line(s, "/r")


def test_a_sweep_names_the_best_point_and_its_values_not_the_mean_over_points():
    worse = {"point": 0, "optimizer.lr": 0.001, "gamma": 0.99, **{k: PLAIN[k] for k in (
        "final_return_ci95", "final_return_per_seed", "solved_threshold", "first_solved_iteration")},
        "final_return_mean": 100.0, "seeds_solved_final": 0}
    best = {**worse, "point": 1, "optimizer.lr": 0.01, "final_return_mean": 480.5, "seeds_solved_final": 2}
    s = {**PLAIN, "points": [worse, best], "best_point": 1, "final_return_of": "best_point"}
    line = result_line(s, "/r")
    assert "best of 2 sweep points, point 1 (optimizer.lr=0.01, gamma=0.99): final return 480.50" in line
    assert "2/3 seeds solved" in line


def test_the_progress_label_names_the_points_it_averages():
    assert return_label(1) == "ret" and return_label(6) == "ret(mean of 6 points)"
