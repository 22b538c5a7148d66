"""Eq. 5.1, weights, clipping and aggregation (pure; no server)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanser.rewards.formula import (
    Weights,
    check_clip,
    clip_term,
    parse_weights,
    process_reward,
    reward_to_go,
    trajectory_return,
)


# -- the paper's worked numbers (the only hard-coded results) -----------------
@pytest.mark.parametrize("before,after,safety,conf,expected", [
    (1, 0, 1, 0.72, 0.872),    # section 5.1 envelope: diag_delta 1, S=1, a=0.72
    (5, 2, 1, 0.94, 1.894),    # appendix E, example 1
    (7, 7, 0, 0.62, -0.438),   # appendix E, example 2
])
def test_paper_numbers(before, after, safety, conf, expected):
    pr = process_reward(diag_before=before, diag_after=after, safety=safety, alpha_conf=conf)
    assert pr["r"] == expected
    assert pr["components"]["diag_delta"] == before - after
    assert pr["components"]["ambiguity_penalty"] == round(1 - conf, 6)


def test_shape_is_the_contracts():
    pr = process_reward(diag_before=5, diag_after=2, safety=1, alpha_conf=0.94)
    assert set(pr) == {"version", "r", "weights", "components", "diagTerm", "clip", "term"}
    assert pr["version"] == "pr-v1"
    assert pr["weights"] == {"alpha": 0.5, "beta": 0.4, "gamma": 0.1}
    assert list(pr["components"]) == ["diag_before", "diag_after", "diag_delta", "safety",
                                      "alpha_conf", "ambiguity_penalty"]
    assert pr["components"]["diag_delta"] == 3 and isinstance(pr["components"]["diag_delta"], int)
    assert pr["components"]["alpha_conf"] == 0.94
    assert pr["diagTerm"] == "delta" and pr["clip"] is None and pr["term"] == 3


def test_signed_safety_term():
    ok = process_reward(diag_before=3, diag_after=3, safety=1)
    bad = process_reward(diag_before=3, diag_after=3, safety=0)
    assert ok["r"] == 0.4 and bad["r"] == -0.4


def test_custom_weights_are_used_and_recorded():
    w = Weights(alpha=1.0, beta=0.0, gamma=2.0)
    pr = process_reward(diag_before=4, diag_after=1, safety=0, alpha_conf=0.5, weights=w)
    assert pr["r"] == 1.0 * 3 + 0.0 - 2.0 * 0.5
    assert pr["weights"] == {"alpha": 1.0, "beta": 0.0, "gamma": 2.0}


# -- clipping ----------------------------------------------------------------
def test_clip_bounds_the_diagnostic_term_only():
    pr = process_reward(diag_before=10, diag_after=0, safety=1, clip=2)
    assert pr["term"] == 2 and pr["components"]["diag_delta"] == 10
    assert pr["r"] == 0.5 * 2 + 0.4
    pr = process_reward(diag_before=0, diag_after=9, safety=1, clip=1.5)
    assert pr["term"] == -1.5 and pr["r"] == round(0.5 * -1.5 + 0.4, 6)
    assert pr["clip"] == 1.5


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "3", True])
def test_bad_clip(bad):
    with pytest.raises(ValueError):
        check_clip(bad)


@given(st.integers(-50, 50), st.floats(0.1, 20))
def test_clip_term_in_bounds(term, clip):
    out = clip_term(term, clip)
    assert -clip <= out <= clip
    if abs(term) <= clip:
        assert out == term


# -- weights parsing ----------------------------------------------------------
def test_parse_weights():
    assert parse_weights("alpha=0.5,beta=0.4,gamma=0.1") == Weights()
    assert parse_weights(" alpha = 1 , gamma=0 ") == Weights(alpha=1.0, beta=0.4, gamma=0.0)
    assert parse_weights("beta=2") == Weights(beta=2.0)


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"),
    ("alpha", "NAME=VALUE"),
    ("alpha=x", "not a number"),
    ("alpha=-1", ">= 0"),
    ("alpha=nan", ">= 0"),
    ("delta=1", "unknown weight"),
    ("alpha=1,alpha=2", "twice"),
    ("alpha=1,,beta=2", "empty item"),
])
def test_parse_weights_errors(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_weights(text)


@pytest.mark.parametrize("kwargs", [
    {"safety": 2}, {"alpha_conf": 1.5}, {"alpha_conf": -0.1}, {"diag_before": -1},
    {"diag_term": "bogus"}, {"diag_term": "regression"},  # regression needs an explicit term
])
def test_bad_inputs(kwargs):
    args = {"diag_before": 1, "diag_after": 0, "safety": 1, **kwargs}
    with pytest.raises(ValueError):
        process_reward(**args)


def test_weights_validate():
    with pytest.raises(ValueError):
        Weights(alpha=-0.1)


# -- aggregation --------------------------------------------------------------
def test_reward_to_go_sum_and_min():
    rs = [0.4, -0.1, 0.9, 0.3]
    assert reward_to_go(rs, "sum") == [1.5, 1.1, 1.2, 0.3]
    assert reward_to_go(rs, "min") == [-0.1, -0.1, 0.3, 0.3]
    assert trajectory_return(rs, "min") == -0.1
    assert trajectory_return([], "sum") == 0.0
    with pytest.raises(ValueError):
        reward_to_go(rs, "mean")


@settings(max_examples=60)
@given(st.lists(st.integers(0, 30), min_size=2, max_size=12))
def test_delta_term_telescopes(ds):
    """With beta = gamma = 0 and no clip, the return is alpha*(D_0 - D_T)."""
    w = Weights(alpha=0.5, beta=0.0, gamma=0.0)
    rs = [process_reward(diag_before=a, diag_after=b, safety=1, weights=w)["r"]
          for a, b in zip(ds, ds[1:])]
    assert trajectory_return(rs, "sum") == pytest.approx(0.5 * (ds[0] - ds[-1]))


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=15))
def test_min_form_is_suffix_minimum(rs):
    values = reward_to_go(rs, "min")
    for t, v in enumerate(values):
        assert v == round(min(rs[t:]), 6)
    # a value never exceeds the value of any later step
    assert all(a <= b for a, b in zip(values, values[1:]))
