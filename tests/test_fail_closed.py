"""Verification fails closed: an exception, panic or any result other than True is invalid.

These tests inject failures into the ezkl call (the real ezkl cannot be made to panic on demand);
the paths they exercise are the ones a crashing or misbehaving verifier would take.
"""

from __future__ import annotations

from typing import Any

import ezkl
import pytest

from prover import verify
from tests.conftest import Compiled


class FakePanic(BaseException):
    """Stands in for pyo3's PanicException, which derives from BaseException."""


def _raise(exc: BaseException) -> Any:
    def fn(**_: Any) -> Any:
        raise exc

    return fn


@pytest.mark.parametrize(
    "replacement, reason",
    [
        (_raise(RuntimeError("boom")), "boom"),
        (_raise(FakePanic("rust panic")), "panicked"),
        (lambda **_: False, "returned False"),
        (lambda **_: None, "returned None"),
        (lambda **_: "true", "returned 'true'"),
        (lambda **_: 1, "returned 1"),
    ],
)
def test_anything_but_true_from_ezkl_is_invalid(
    mlp: Compiled, monkeypatch: pytest.MonkeyPatch, replacement: Any, reason: str
) -> None:
    monkeypatch.setattr(ezkl, "verify", replacement)
    result = verify(mlp.proof, mlp.bundle.root)
    assert result.valid is False
    assert reason in result.reason


def test_keyboard_interrupt_is_not_swallowed(
    mlp: Compiled, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ezkl, "verify", _raise(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        verify(mlp.proof, mlp.bundle.root)


def test_without_a_fake_the_same_proof_is_valid(mlp: Compiled) -> None:
    assert verify(mlp.proof, mlp.bundle.root).valid
