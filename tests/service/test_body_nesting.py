"""The API parses JSON bodies with the interpreter's recursion limit as the only bound on their
nesting: nothing the API imports may raise it (web3's py_ecc sets 100,000, after which a body of
nested brackets under the size limit overflows the C stack and kills the process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

#: The real app (no database: the store is replaced), serving a chain so that GET /v1/models reads
#: the deployments record, then a body of 200,000 nested brackets.
SCRIPT = """
import sys
from fastapi.testclient import TestClient
from prover.service.app import create_app
from prover.service.deps import get_store
from prover.service.store import Store
from prover.settings import DEV_CLIENT_KEY, Settings

class NoModels:
    async def list_models(self):
        return []

settings = Settings(dev=True, chain_id=31337, home=sys.argv[1], reference_models=False)
app = create_app(settings, Store("postgresql://nobody@127.0.0.1:1/none"))
app.dependency_overrides[get_store] = NoModels
api = TestClient(app)
auth = {"Authorization": f"Bearer {DEV_CLIENT_KEY}"}
listed = api.get("/v1/models", headers=auth)
assert listed.status_code == 200 and listed.json()["items"] == [], listed.text
nested = api.post(
    "/v1/verify", content=b"[" * 200_000, headers={**auth, "content-type": "application/json"}
)
print(nested.status_code, sys.getrecursionlimit())
"""


def test_a_deeply_nested_body_after_the_models_list_is_refused_not_a_crash(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    status, limit = result.stdout.split()
    assert status.startswith("4") and int(limit) < 10_000
