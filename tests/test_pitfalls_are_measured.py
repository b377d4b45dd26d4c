"""A pitfall a chapter measures must differ from the correct run it is compared with (issue 38 §3, §6).

When a chapter says "this common mistake costs you X" and records both runs, a recorded pitfall equal to the
correct run means the measurement did not exercise the mistake (06's truncation run, before its 100-step limit,
was bit-identical to the correct one): the chapter then teaches a claim its own record does not support. Each row
names the results file, the pitfall's key and the correct run's key; every mode recorded with both is checked.
"""

from __future__ import annotations

import math

import pytest

from tools import records

PITFALLS = [
    ("06_dqn", "replay_per_episode_greedy", "dqn_greedy_median"),
    ("06_dqn", "reinforce_greedy_median", "reinforce_baseline_greedy_median"),
    ("06_dqn", "limit_truncation_start_value", "limit_ours_start_value"),
    ("08_clip", "temperature_plain_big_lr_loss", "temperature_log_big_lr_loss"),
    ("08_clip", "position_probe_pooled", "position_probe_full_map"),
    ("09_resnet_vit", "degradation_plain_deep", "degradation_resnet_deep"),
    ("09_resnet_vit", "grad_ratio_plain", "grad_ratio_resnet"),
    ("10_transformers", "saturation_max_weight_unscaled_256", "saturation_max_weight_scaled_256"),
    # A maintainer's full-size measurement quoted by chapter 10 (tools/diagnostics/postnorm_warmup.py).
    ("diagnostics/postnorm_warmup", "post_depth8_lr3e-3_cold_val_loss", "post_depth8_lr3e-3_warm_val_loss"),
    ("10_transformers", "leak_last_position_loss_no_mask", "leak_last_position_loss_masked"),
    ("10_transformers", "leak_window_loss_no_mask", "leak_window_loss_masked"),
    ("10_transformers", "mask_rule_real_token_accuracy_all", "mask_rule_real_token_accuracy_80_10_10"),
    ("10_transformers", "permutation_error_no_positions", "permutation_error_with_positions"),
    ("11_seq2seq", "attention_after_error_free", "attention_after_error_forced"),
    ("11_seq2seq", "plain_after_error_free", "plain_after_error_forced"),
    ("11_seq2seq", "plain_beam5_penalty0_short", "plain_beam5_penalty1_short"),
    ("11_seq2seq", "plain_scheduled_after_error_free", "plain_after_error_free"),  # the remedy must differ too
]
# Pitfalls whose measurement is known not to show the effect yet; strict, so a fix must remove the entry.
KNOWN_NULL: dict = {}


def _params():
    for slug, pitfall, correct in PITFALLS:
        reason = KNOWN_NULL.get((slug, pitfall))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(slug, pitfall, correct, id=f"{slug}:{pitfall}", marks=marks)


def differs(a: float, b: float) -> bool:
    return not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


@pytest.mark.parametrize("slug, pitfall, correct", list(_params()))
def test_a_recorded_pitfall_differs_from_the_correct_run(slug, pitfall, correct):
    recorded = records.read(slug)
    modes = [m for m in ("fast", "full") if pitfall in recorded.get(m, {}).get("values", {})]
    assert modes, f"{slug}: the pitfall {pitfall} is not recorded in any mode"
    for mode in modes:
        values = recorded[mode]["values"]
        assert correct in values, f"{slug} ({mode}): {pitfall} is recorded without {correct} to compare with"
        assert differs(values[pitfall], values[correct]), (
            f"{slug} ({mode}): the pitfall {pitfall} = {values[pitfall]} equals the correct run's {correct}: the "
            "measurement does not exercise the mistake")


def test_equal_values_are_caught_and_different_ones_pass():
    assert not differs(259.35, 259.35) and differs(0.4, 0.35) and differs(0.0, 1e-6)
