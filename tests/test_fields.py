"""Field-element encoding: canonical, signed, and the same as ezkl's."""

from __future__ import annotations

import ezkl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prover.core.ezkl_backend import float_to_felts
from prover.core.fields import (
    FIELD_MODULUS,
    felt_from_hex,
    felt_to_hex,
    felt_to_signed,
    signed_to_float,
)


@given(st.integers(min_value=-(2**120), max_value=2**120))
def test_signed_values_round_trip(value: int) -> None:
    assert felt_to_signed(felt_from_hex(felt_to_hex(value))) == value


@given(st.floats(min_value=-1000, max_value=1000, allow_nan=False), st.integers(0, 16))
def test_decoding_matches_ezkl(x: float, scale: int) -> None:
    felt = float_to_felts([x], scale)[0]
    ours = signed_to_float(felt_to_signed(felt_from_hex(felt)), scale)
    assert ours == pytest.approx(ezkl.felt_to_float(felt, scale), abs=1e-12)


@pytest.mark.parametrize(
    "text",
    ["", "00", "zz" * 32, felt_to_hex(0)[:-2], FIELD_MODULUS.to_bytes(32, "little").hex()],
)
def test_non_canonical_encodings_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        felt_from_hex(text)


def test_fidelity_tolerance_is_relative_to_the_largest_output() -> None:
    from prover.core.witness import fidelity_problem

    close = {"onnxruntime": [[10.0, -2.0]], "max_abs_diff": 0.4}
    far = {"onnxruntime": [[10.0, -2.0]], "max_abs_diff": 0.6}
    assert fidelity_problem(close) is None
    problem = fidelity_problem(far)
    assert problem is not None and "6%" in problem
