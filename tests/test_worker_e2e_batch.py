"""Batching end to end with real processes: ``zkinfer serve`` (API and queue worker) over the
machine's PostgreSQL and a real ``zkinfer worker --api`` proving the ``tiny_batch`` bundle (4
slots): one client's requests share one proof, another client's get a proof of their own."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from prover.core.slots import batch_values
from prover.core.verify import verify_values
from tests.conftest import Compiled
from tests.helpers.e2e import (
    TERMINAL,
    Client,
    api_process,
    queue_process,
    register,
    service_env,
    worker_process,
)
from tests.helpers.service import CLIENT_A, CLIENT_B, PROVIDER, count_rows
from tests.helpers.tiny import tiny_input, tiny_outputs

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_worker_proves_one_clients_requests_as_one_batch_and_each_gets_its_outputs(
    private_pg_url: str, tiny_batch: Compiled, tmp_path: Path
) -> None:
    env = service_env(private_pg_url, tmp_path / "home", ZKINFER_BATCH_WAIT_S="1")
    model_id = f"tiny-batch-{uuid.uuid4().hex[:8]}"
    register(private_pg_url, model_id, tiny_batch.bundle.root)
    with (
        queue_process(env, tmp_path / "queue.log"),
        api_process(env, tmp_path / "api.log") as api,
    ):
        a, b = Client(api.url, CLIENT_A), Client(api.url, CLIENT_B)
        mine = [a.request(model_id, tiny_input(i)) for i in (0, 1, 2)]
        theirs = b.request(model_id, tiny_input(3))
        with worker_process(
            api.url, PROVIDER, tmp_path / "w", tmp_path / "w.log", "--model", model_id
        ) as worker:
            done = {i: a.wait(i, TERMINAL, 300) for i in mine}
            done[theirs] = b.wait(theirs, TERMINAL, 300)
            # the worker reports a lease once its submission is answered, after the verdict
            give_up = time.monotonic() + 60
            while len(worker.lines) < 2 and time.monotonic() < give_up:
                time.sleep(0.2)
        lines = worker.lines

    assert {d["status"] for d in done.values()} == {"done"}, worker.stderr()
    # one client's three requests: one lease, one proof, three slots and one padding slot
    assert sorted(done[i]["slot"] for i in mine) == [0, 1, 2]
    assert {(done[i]["batch_size"], tuple(done[i]["padding"])) for i in mine} == {(4, (3,))}
    assert len({json.dumps(done[i]["proof"], sort_keys=True) for i in mine}) == 1
    # the other client's request is never in their batch: a proof of its own, padded
    assert (done[theirs]["slot"], done[theirs]["padding"]) == (0, [1, 2, 3])
    assert done[theirs]["proof"] != done[mine[0]]["proof"]
    for k, inference_id in enumerate([*mine, theirs]):
        got = done[inference_id]["outputs"][0]
        assert got == pytest.approx(tiny_outputs(k), abs=0.05), (k, got)
    leases = count_rows(
        private_pg_url,
        "SELECT count(DISTINCT a.lease_id) FROM attempts a JOIN inferences i"
        " ON i.id = a.inference_id WHERE i.model_id = %s AND a.outcome = 'accepted'",
        model_id,
    )
    assert leases == 2
    accepted = count_rows(
        private_pg_url,
        "SELECT count(*) FROM attempts a JOIN inferences i ON i.id = a.inference_id"
        " WHERE i.model_id = %s AND a.outcome = 'accepted'",
        model_id,
    )
    assert accepted == 4  # once per request
    assert sorted(line["status"] for line in lines) == ["accepted", "accepted"]
    batch_line = next(line for line in lines if mine[0] in line["batch"])
    assert sorted(x for x in batch_line["batch"] if x) == sorted(mine)
    assert batch_line["batch"][3] is None  # the padding slot

    # each client checks the shared proof itself, against its own copy of the bundle: its slot
    # holds its input, and the outputs the service gave it are that slot's
    for k, inference_id in enumerate([*mine, theirs]):
        doc = done[inference_id]
        verdict = verify_values(
            doc["proof"], tiny_batch.bundle.root, slot=doc["slot"], values=tiny_input(k)
        )
        assert verdict.valid, verdict.reason
        assert verdict.outputs == doc["outputs"]
    # and the whole batch: the requests' inputs in their slots, the bundle's padding in slot 3
    by_slot = {done[i]["slot"]: tiny_input(k)["input_data"] for k, i in enumerate(mine)}
    whole = batch_values(tiny_batch.bundle.manifest, [by_slot[0], by_slot[1], by_slot[2], None])
    assert verify_values(done[mine[0]]["proof"], tiny_batch.bundle.root, values=whole).valid
