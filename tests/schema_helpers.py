"""Schema assertions other tests can use: ``from schema_helpers import assert_valid_bundle``."""

from __future__ import annotations

from typing import Any

import pytest

from lanser.bundles.schema import errors


def assert_valid(kind: str, instance: Any) -> None:
    """Fail with the schema's messages unless ``instance`` is a valid ``kind``."""
    msgs = errors(kind, instance)
    assert not msgs, f"not a valid {kind}: " + "; ".join(msgs)


def assert_valid_bundle(bundle: Any) -> None:
    """Every bundle the tool prints must validate against bundles/schemas/bundle.json."""
    assert_valid("bundle", bundle)


@pytest.fixture
def valid_bundle() -> Any:
    """The helper as a fixture, for tests that prefer fixtures to imports."""
    return assert_valid_bundle
