"""Config of env=Tokens, the sequence policies and the group estimators: the presets load with
their papers' settings, and bad combinations stop with one paragraph naming the key."""

from __future__ import annotations

import pytest

from pgrun.config.group import uses_group
from pgrun.errors import ConfigError
from tests.helpers import make_config

TOK = ["env=Tokens", "policy=transformer"]


def test_presets_carry_their_papers_settings():
    want = {
        "rloo": dict(baseline="group_loo", adv_scale="none", loss_agg="seq_sum", correction="none"),
        "grpo": dict(baseline="group_mean", adv_scale="group_std", loss_agg="seq_mean_token_mean", correction="clip",
                     kl_estimator="k3_loss"),
        "dr_grpo": dict(baseline="group_mean", adv_scale="none", loss_agg="token_sum_const"),
        "dapo": dict(adv_scale="group_std", loss_agg="batch_token_mean", clip_eps=0.2, clip_eps_high=0.28,
                     dynamic_sampling=True, kl_coef=0.0),
        "gspo": dict(ratio_level="sequence", loss_agg="seq_mean_token_mean", correction="clip"),
        "reinforce_pp": dict(baseline="batch_mean", adv_scale="batch_std", weight="reward_to_go",
                             kl_estimator="k1_reward"),
    }
    for name, fields in want.items():
        est = make_config(*TOK, f"estimator={name}").estimator
        assert uses_group(est), name
        for k, v in fields.items():
            assert getattr(est, k) == v, (name, k)


def test_the_lecture_estimators_do_not_take_the_group_path():
    for name in ("reinforce", "reward_to_go", "baseline", "ppo"):
        assert not uses_group(make_config(f"estimator={name}").estimator)


@pytest.mark.parametrize("overrides, words", [
    (["estimator=rloo", "estimator.group_size=1"], ["group_loo", "group_size >= 2"]),
    (["estimator=rloo", "episodes_per_iteration=10"], ["episodes_per_iteration=10", "multiple of", "group_size=4"]),
    (["estimator=grpo", "estimator.loss_agg=mean"], ["estimator.loss_agg=mean", "token_sum_const"]),
    (["estimator=grpo", "estimator.ratio_level=word"], ["estimator.ratio_level=word", "sequence"]),
    (["estimator=rloo", "estimator.clip_eps_high=0.3"], ["clip_eps_high", "estimator.correction=clip"]),
    (["estimator=rloo", "estimator.kl_coef=-1"], ["estimator.kl_coef=-1", ">= 0"]),
    (["estimator=rloo", "estimator.kl_estimator=k2"], ["estimator.kl_estimator=k2", "k3_loss"]),
    (["estimator=rloo", "estimator.baseline=none", "estimator.weight=gae"], ["estimator.weight", "total_return"]),
    (["estimator=rloo", "estimator.normalize_advantages=true"], ["normalize_advantages", "batch_std"]),
    (["estimator=grpo", "episodes_per_iteration=48", "estimator.minibatches=8"],
     ["minibatches=8", "12 groups", "valid choices: 1, 2, 3, 4, 6, 12"]),
    (["estimator=rloo", "env.task=translate"], ["env.task=translate", "reverse"]),
    (["estimator=rloo", "env.vocab=17"], ["env.vocab=17", "2..16"]),
    (["estimator=rloo", "env.task=add", "env.prompt_len=3"], ["env.prompt_len=3", "even"]),
    (["estimator=rloo", "env.horizon=3"], ["env.horizon=3", "4 tokens"]),
    (["estimator=rloo", "policy=tabular_prefix"], ["policy=tabular_prefix", "policy=transformer"]),
    (["estimator=rloo", "policy=gru", "policy.kv_cache=true"], ["policy.kv_cache=true", "policy=gru has none"]),
])
def test_bad_combinations_name_the_key(overrides, words):
    with pytest.raises(ConfigError) as e:
        make_config(*TOK, "episodes_per_iteration=64", *overrides)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_kv_cache_is_on_unless_turned_off():
    from pgrun.train.build import build
    for overrides, on in (([], True), (["policy.kv_cache=true"], True), (["policy.kv_cache=false"], False)):
        parts = build(make_config(*TOK, "estimator=rloo", *overrides))
        assert (parts.policy.decoder is not None) == on, overrides
    assert build(make_config("env=Tokens", "policy=gru", "estimator=rloo")).policy.decoder is None


def test_token_keys_and_sequence_policies_need_env_tokens():
    with pytest.raises(ConfigError, match="env.task only apply to env=Tokens"):
        make_config("env=CartPole", "env.task=copy")
    with pytest.raises(ConfigError, match="policy=transformer reads token sequences"):
        make_config("env=CartPole", "policy=transformer")
