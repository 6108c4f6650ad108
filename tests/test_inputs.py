"""Input parsing and validation: every bad input is refused by name, before ezkl sees it."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from prover.core.inputs import InputRange, load_inputs, parse_inputs, validate_inputs
from prover.core.jsonio import nesting_depth
from prover.errors import InputError
from tests.helpers import write_json

RANGE = InputRange.from_values([-1.0, 1.0])


def test_parse_accepts_ezkl_format_and_plain_nested_list() -> None:
    assert parse_inputs({"input_data": [[1, 2, 3]]}, "x", 1) == [[1.0, 2.0, 3.0]]
    assert parse_inputs({"input": [[1, 2], [3, 4]]}, "x", 1) == [[1.0, 2.0, 3.0, 4.0]]
    assert parse_inputs({"input_data": [1, 2]}, "x", 1) == [[1.0, 2.0]]


@pytest.mark.parametrize(
    "doc, fragment",
    [
        ([1, 2], '"input_data"'),
        ({"data": [1]}, '"input_data"'),
        ({"input_data": []}, "non-empty"),
        ({"input_data": [["a"]]}, "'a' is not a number"),
        ({"input_data": [[True]]}, "True is not a number"),
        ({"input_data": [[1], [2]]}, "2 lists but the model has 1"),
    ],
)
def test_parse_rejects_malformed_documents(doc: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_inputs(doc, "input.json", 1)


def test_load_names_file_for_missing_and_non_json(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such input file"):
        load_inputs(tmp_path / "absent.json", 1)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad.json: not valid JSON"):
        load_inputs(bad, 1)


def test_load_keeps_nan_and_infinity_so_validation_can_name_them(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"input_data": [[NaN, Infinity, -Infinity]]}')
    values = load_inputs(path, 1)[0]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_validate_rejects_non_finite(bad: float) -> None:
    with pytest.raises(InputError, match="NaN and infinity cannot be proven"):
        validate_inputs([[0.0, bad]], [(1, 2)], None, "input.json")


def test_validate_rejects_wrong_length_naming_the_shape() -> None:
    with pytest.raises(InputError, match=r"has 3 values but the model expects shape \[1, 2\]"):
        validate_inputs([[0.0, 0.1, 0.2]], [(1, 2)], None, "input.json")


def test_validate_rejects_values_far_outside_calibrated_range() -> None:
    validate_inputs([[2.9, -2.9]], [(1, 2)], [RANGE], "input.json")
    with pytest.raises(InputError, match="far outside the calibrated range"):
        validate_inputs([[0.0, 1e6]], [(1, 2)], [RANGE], "input.json")


def test_validate_calibration_accepts_whole_samples_only() -> None:
    validate_inputs([[0.0] * 6], [(1, 2)], None, "cal.json", samples=0)
    with pytest.raises(InputError, match="not a multiple"):
        validate_inputs([[0.0] * 5], [(1, 2)], None, "cal.json", samples=0)


def test_range_round_trips_through_json() -> None:
    assert InputRange.from_json(RANGE.to_json()) == RANGE


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"input_data": [[' + "9" * 400 + "]]}", "too large for a float"),
        ('{"input_data": [[' + "9" * 5000 + "]]}", "not usable JSON"),
        ('{"input_data": ' + "[" * 100_000 + "]" * 100_000 + "}", "not usable JSON"),
    ],
)
def test_absurd_numbers_and_nesting_are_input_errors(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(InputError, match=fragment):
        load_inputs(path, 1)


def test_nested_input_must_have_the_model_shape(tmp_path: Path) -> None:
    shape: list[tuple[int, ...]] = [(1, 2, 2)]
    good = write_json(tmp_path / "good.json", {"input": [[1, 2], [3, 4]]})
    assert load_inputs(good, 1, shape) == [[1.0, 2.0, 3.0, 4.0]]
    flat = write_json(tmp_path / "flat.json", {"input": [1, 2, 3, 4]})
    assert load_inputs(flat, 1, shape) == [[1.0, 2.0, 3.0, 4.0]]
    transposed = write_json(tmp_path / "t.json", {"input": [[1, 2, 3, 4]]})
    with pytest.raises(InputError, match=r"has shape \[1, 4\] but the model expects \[1, 2, 2\]"):
        load_inputs(transposed, 1, shape)
    ragged = write_json(tmp_path / "r.json", {"input": [[1, 2], [3]]})
    with pytest.raises(InputError, match="ragged"):
        load_inputs(ragged, 1, shape)


def test_deep_nesting_is_refused_before_parsing_even_with_web3s_recursion_limit(
    tmp_path: Path,
) -> None:
    """py_ecc (a web3 dependency) raises the recursion limit to 100,000; without the depth check
    the C JSON decoder then overflows the stack on such a file and the process dies."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"input_data": ' + "[" * 200_000 + "]" * 200_000 + "}")
    code = (
        "import sys, web3\n"
        "from pathlib import Path\n"
        "from prover.core.inputs import load_inputs\n"
        "from prover.core.proofs import MalformedProof, read_proof_file\n"
        "from prover.errors import InputError\n"
        "assert sys.getrecursionlimit() >= 100_000\n"
        f"path = Path({str(deep)!r})\n"
        "try:\n    load_inputs(path, 1)\nexcept InputError as e:\n    print('input:', e)\n"
        "try:\n    read_proof_file(path)\nexcept MalformedProof as e:\n    print('proof:', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "input:" in proc.stdout and "proof:" in proc.stdout
    assert proc.stdout.count("at most 64 are accepted") == 2


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert nesting_depth(b'{"a": "[[[[{{{{", "b": [1, [2]], "c": "\\"]]]"}') == 3


@pytest.mark.timeout(120)  # a hang guard, not a speed target: a quadratic scan takes days here
def test_the_depth_scan_is_linear_in_unterminated_strings() -> None:
    assert nesting_depth(b'"\\' * 1_000_000) == 0
    assert nesting_depth(b'["abc') == 1


def test_a_utf16_proof_is_malformed_not_a_crash(tmp_path: Path) -> None:
    """json.loads(bytes) would read UTF-16, where a byte-wise scan sees other brackets."""
    doc = '["\u0122",' + "[" * 100_000 + '"x"' + "]" * 100_000 + "]"
    path = tmp_path / "p.json"
    path.write_bytes(doc.encode("utf-16-le"))
    code = (
        "import web3\n"
        "from prover.core.proofs import MalformedProof, read_proof_file\n"
        f"try:\n    read_proof_file({str(path)!r})\n"
        "except MalformedProof as e:\n    print('ok', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr[-2000:]
