"""Golden documents: regenerate every fixture query, dry-run mutation and reward run against
the real server and compare whole documents byte for byte (``make golden`` rewrites them
after a reviewed change)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from schema_helpers import assert_valid, assert_valid_bundle

GOLDEN = Path(__file__).resolve().parent / "golden"


def _regenerate_module() -> Any:
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REGEN = _regenerate_module()


@pytest.fixture(scope="module")
def fresh() -> dict[str, dict[str, Any]]:
    return REGEN.generate()


@pytest.fixture(scope="module")
def fresh_rewards() -> dict[str, list[dict[str, Any]]]:
    return REGEN.generate_rewards()


def test_every_case_has_a_golden_file() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(REGEN.CASES)
    assert sorted(p.stem for p in (GOLDEN / "rewards").glob("*.jsonl")) == sorted(REGEN.REWARDS)


@pytest.mark.server
@pytest.mark.parametrize("name", sorted(REGEN.CASES))
def test_golden_bundle_bytes(fresh: dict[str, dict[str, Any]], name: str) -> None:
    bundle = fresh[name]
    assert_valid_bundle(bundle)
    expected = (GOLDEN / f"{name}.json").read_bytes()
    got = REGEN.golden_bytes(bundle)
    if got != expected:
        want = json.loads(expected)
        assert bundle == want, f"{name}: bundle differs from tests/golden/{name}.json (run `make golden` and review)"
    assert got == expected


@pytest.mark.server
@pytest.mark.parametrize("name", sorted(REGEN.REWARDS))
def test_golden_reward_records_bytes(fresh_rewards: dict[str, list[dict[str, Any]]], name: str) -> None:
    records = fresh_rewards[name]
    for record in records:
        assert_valid("reward-record", record)
    expected = (GOLDEN / "rewards" / f"{name}.jsonl").read_bytes()
    got = REGEN.golden_lines(records)
    if got != expected:
        want = [json.loads(line) for line in expected.splitlines()]
        assert records == want, f"{name}: records differ from tests/golden/rewards/{name}.jsonl (run `make golden` and review)"
    assert got == expected
