"""``zkinfer worker``: exactly one of --api or --chain, the key from the environment only, clear
exit codes without tracebacks."""

from __future__ import annotations

import pytest

from tests.helpers import zkinfer

KEY = "provider-key-not-to-be-printed-0000"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--api", "http://127.0.0.1:9", "--chain"),
        ("--api", "http://127.0.0.1:9", "--bundle", "somewhere"),
    ],
)
def test_the_worker_needs_exactly_one_source_of_work(args: tuple[str, ...]) -> None:
    result = zkinfer("worker", *args, "--json", env={"ZKINFER_PROVIDER_KEY": KEY})
    assert result.code == 2
    assert result.json["ok"] is False and "--api" in result.json["error"]["message"]
    assert "Traceback" not in result.stderr


def test_help_says_what_each_mode_needs() -> None:
    text = zkinfer("worker", "--help").stdout
    assert "exactly one of" in text and "ZKINFER_PROVIDER_KEY" in text and "--bundle" in text


def test_a_missing_key_or_an_unreachable_service_is_an_environment_error() -> None:
    nokey = zkinfer(
        "worker",
        "--api",
        "http://127.0.0.1:9",
        "--once",
        "--json",
        env={"ZKINFER_PROVIDER_KEY": ""},
    )
    assert nokey.code == 3 and "ZKINFER_PROVIDER_KEY" in nokey.json["error"]["message"]
    down = zkinfer(
        "worker",
        "--api",
        "http://127.0.0.1:9",
        "--once",
        "--json",
        env={"ZKINFER_PROVIDER_KEY": KEY},
    )
    assert down.code == 3 and "did not answer" in down.json["error"]["message"]
    assert KEY not in down.stdout + down.stderr and "Traceback" not in down.stderr
