"""A request's ``inputData`` is untrusted: only the canonical encoding for the model is decoded."""

from __future__ import annotations

import tracemalloc

import pytest
from eth_abi.abi import encode as abi_encode

from prover.chain.market import decode_input_data, encode_request_input, input_data_length
from prover.core.expected import load_bundle_inputs
from prover.errors import InputError
from tests.conftest import Compiled


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def aliased_bomb(arrays: int, values: int) -> bytes:
    """``abi.encode(int256[][])`` whose ``arrays`` inner offsets all point at one array of
    ``values`` words: a general decoder reads ``arrays * values`` values from
    ``32 * (arrays + values)`` bytes."""
    offsets = [_word(32 * arrays)] * arrays  # every element aliases the first inner array
    inner = _word(values) + b"".join(_word(i) for i in range(values))
    return _word(32) + _word(arrays) + b"".join(offsets) + inner


def test_the_canonical_input_data_round_trips(mlp: Compiled) -> None:
    values = load_bundle_inputs(mlp.bundle, mlp.sample)
    _, data = encode_request_input(mlp.bundle, values)
    assert len(data) == input_data_length([len(g) for g in values])
    decoded = decode_input_data(mlp.bundle, data)
    assert decoded[0] == pytest.approx(values[0], abs=2**-12)
    assert encode_request_input(mlp.bundle, decoded)[1] == data  # exact, not approximate


def test_aliased_offsets_are_refused_before_any_decoding(mlp: Compiled) -> None:
    """Issue 8: 64 KiB of aliased offsets were decoded into a million values (hundreds of MiB)
    before the sizes were compared."""
    bomb = aliased_bomb(1000, 1000)
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as exc:
            decode_input_data(mlp.bundle, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # bytes: nothing proportional to the aliased values was built
    message = str(exc.value)
    assert f"is {len(bomb)} bytes, not the {input_data_length([30])} bytes" in message
    assert len(message) < 200


def test_a_payload_of_the_right_length_with_aliased_or_shifted_offsets_is_refused(
    mlp: Compiled,
) -> None:
    values = load_bundle_inputs(mlp.bundle, mlp.sample)
    _, data = encode_request_input(mlp.bundle, values)
    assert len(values) == 1 and len(values[0]) == 30
    # Same length: the inner offset moved one word on, the length word changed, the outer
    # offset moved; each would let a general decoder read other words than the canonical ones.
    for at, word in ((64, 64), (96, 29), (0, 0)):
        hostile = data[:at] + _word(word) + data[at + 32 :]
        assert len(hostile) == len(data)
        with pytest.raises(InputError, match="not the canonical"):
            decode_input_data(mlp.bundle, hostile)


def test_input_data_for_another_shape_is_refused_by_its_length(mlp: Compiled) -> None:
    for groups in ([[1] * 29], [[1] * 31], [[1] * 15, [1] * 15], []):
        with pytest.raises(InputError, match=r"not the \d+ bytes"):
            decode_input_data(mlp.bundle, abi_encode(["int256[][]"], [groups]))
