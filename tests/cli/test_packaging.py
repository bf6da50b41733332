"""Every config folder ships in the wheel (pyproject lists it as a package of pgrun.configs)."""

import os
import tomllib

from helpers import ROOT as REPO

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
