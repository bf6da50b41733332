"""Every config folder ships in the wheel (pyproject lists it as a package of pgrun.configs); the
optional plugins of the test extra fail their tests in CI instead of skipping them."""

import os
import tomllib

import pytest
from helpers import ROOT as REPO
from helpers import optional_missing, optional_module

ROOT = str(REPO)


def test_every_config_folder_is_a_listed_package():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        packages = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    configs = os.path.join(ROOT, "configs")
    for dirpath, _, files in os.walk(configs):
        if any(name.endswith(".yaml") for name in files):
            rel = os.path.relpath(dirpath, configs)
            pkg = "pgrun.configs" + ("" if rel == "." else "." + rel.replace(os.sep, "."))
            assert pkg in packages, f"{pkg} (configs/{rel}) missing from [tool.setuptools] packages"


MISSING = "pgrun_no_such_plugin_xyz"


def test_a_missing_optional_plugin_skips_locally_but_fails_under_pgrun_require_optional(monkeypatch):
    monkeypatch.delenv("PGRUN_REQUIRE_OPTIONAL", raising=False)
    assert optional_missing(MISSING) and not optional_missing("os")
    with pytest.raises(pytest.skip.Exception):
        optional_module(MISSING)
    monkeypatch.setenv("PGRUN_REQUIRE_OPTIONAL", "1")
    assert not optional_missing(MISSING)  # skipif(False): the test runs and meets the missing plugin
    with pytest.raises(ImportError):
        optional_module(MISSING)


def test_ci_requires_the_optional_plugins_it_installs():
    """.ci/run installs the test extra and sets PGRUN_REQUIRE_OPTIONAL=1 on its test command; the
    plugins the tests use are in that extra."""
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert '.[test,lint]' in ci and "PGRUN_REQUIRE_OPTIONAL=1 .venv/bin/python -m pytest" in ci
    # the gymnax tests: deselected in the main step, run (and required) in a venv with the gymnax extra
    assert '-m "not slow and not gymnax"' in ci and '.[test,gymnax]' in ci
    assert 'PGRUN_REQUIRE_OPTIONAL=1 .venv-gymnax/bin/python -m pytest -q -n 2 -m "gymnax and not slow"' in ci
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]

    def requirements(name: str) -> list[str]:  # pgrun[a,b] in an extra stands for those extras' lists
        out = []
        for req in extras[name]:
            if req.startswith("pgrun["):
                for sub in req[len("pgrun["):req.index("]")].split(","):
                    out += requirements(sub.strip())
            else:
                out.append(req)
        return out

    test = " ".join(requirements("test"))
    for dist in ("tensorboard", "hydra-submitit-launcher", "hydra-joblib-launcher", "ray", "optuna", "imageio-ffmpeg"):
        assert dist in test, dist
