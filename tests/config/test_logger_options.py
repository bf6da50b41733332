"""logger.wandb_mode / logger.*_project: bad values are refused with the key and the valid choices."""

from __future__ import annotations

import pytest
from helpers import make_config

from pgrun.errors import ConfigError


@pytest.mark.parametrize("arg,words", [
    ("logger.wandb_mode=ofline", ["logger.wandb_mode='ofline'", "offline, online"]),
    ("logger.wandb_project=a/b", ["logger.wandb_project='a/b'", "without '/'"]),
    ("logger.trackio_project=''", ["logger.trackio_project=''", "non-empty"]),
])
def test_bad_logger_options_are_refused(arg, words):
    with pytest.raises(ConfigError) as e:
        make_config(arg)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_defaults_log_nowhere_and_wandb_stays_offline():
    lc = make_config().logger
    assert (lc.tensorboard, lc.wandb, lc.trackio, lc.wandb_mode) == (False, False, False, "offline")
