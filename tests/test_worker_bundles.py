"""The worker's bundle cache against a real HTTP server serving a real compiled bundle: checked,
resumable downloads (HTTP Range into a ``.part`` file), corrupted bytes refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from prover.core import bundle as b
from prover.errors import ArtifactError
from prover.worker import BundleCache, RetryPolicy, ServiceClient
from tests.conftest import Compiled
from tests.helpers.bundle_server import BundleServer, file_bytes, serve_bundle

pytestmark = pytest.mark.slow  # the session's compiled tiny model


def _cache(server: BundleServer, root: Path) -> BundleCache:
    client = ServiceClient(
        server.url, "provider-key", retry=RetryPolicy(attempts=3, sleep=lambda _: None)
    )
    return BundleCache(client, root=root)


def _file_requests(server: BundleServer, name: str) -> list[str | None]:
    return [rng for path, rng in server.requests if path.endswith(f"/files/{name}")]


def test_download_checks_every_file_and_opens_the_bundle(tiny: Compiled, tmp_path: Path) -> None:
    with serve_bundle(tiny.bundle) as server:
        bundle = _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
        assert bundle.digest == tiny.bundle.digest
        for name in server.names:
            assert bundle.path(name).read_bytes() == file_bytes(tiny.bundle, name)
        assert not list(bundle.root.glob("*.part"))
        # a second worker process with the same cache downloads nothing
        seen = len(server.requests)
        again = _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
        assert again.root == bundle.root
        assert len(server.requests) == seen
        assert _cache(server, tmp_path).cached_models() == [tiny.bundle.model_id]


def test_a_truncated_part_file_is_resumed_with_a_range_request(
    tiny: Compiled, tmp_path: Path
) -> None:
    pk = file_bytes(tiny.bundle, b.PK)
    folder = tmp_path / tiny.bundle.model_id / tiny.bundle.digest
    folder.mkdir(parents=True)
    half = len(pk) // 2
    (folder / f"{b.PK}.part").write_bytes(pk[:half])  # an earlier download cut off halfway
    with serve_bundle(tiny.bundle) as server:
        bundle = _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
        assert _file_requests(server, b.PK) == [f"bytes={half}-"]
        assert server.sent[b.PK] == len(pk) - half
    assert bundle.path(b.PK).read_bytes() == pk


def test_a_connection_cut_mid_file_resumes_where_it_stopped(tiny: Compiled, tmp_path: Path) -> None:
    pk = file_bytes(tiny.bundle, b.PK)
    with serve_bundle(tiny.bundle) as server:
        server.cut_after[b.PK] = 3_000_000
        bundle = _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
        assert _file_requests(server, b.PK) == [None, "bytes=3000000-"]
        assert server.sent[b.PK] == len(pk)
    assert (
        hashlib.sha256(bundle.path(b.PK).read_bytes()).hexdigest() == hashlib.sha256(pk).hexdigest()
    )


def test_a_damaged_part_file_is_fetched_again_whole(tiny: Compiled, tmp_path: Path) -> None:
    pk = file_bytes(tiny.bundle, b.PK)
    folder = tmp_path / tiny.bundle.model_id / tiny.bundle.digest
    folder.mkdir(parents=True)
    (folder / f"{b.PK}.part").write_bytes(b"\0" * 1000 + pk[1000:5000])  # wrong leading bytes
    with serve_bundle(tiny.bundle) as server:
        bundle = _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
        assert _file_requests(server, b.PK) == ["bytes=5000-", None]
    assert bundle.path(b.PK).read_bytes() == pk


def test_a_server_that_ignores_range_restarts_the_file(tiny: Compiled, tmp_path: Path) -> None:
    vk = file_bytes(tiny.bundle, b.VK)
    folder = tmp_path / tiny.bundle.model_id / tiny.bundle.digest
    folder.mkdir(parents=True)
    (folder / f"{b.VK}.part").write_bytes(vk[:100])
    with serve_bundle(tiny.bundle) as server:
        server.ignore_range = True
        bundle = _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
    assert bundle.path(b.VK).read_bytes() == vk


def test_a_corrupted_file_is_refused_and_never_moved_into_place(
    tiny: Compiled, tmp_path: Path
) -> None:
    with serve_bundle(tiny.bundle) as server:
        server.corrupt[b.VK] = 40
        cache = _cache(server, tmp_path)
        with pytest.raises(ArtifactError, match=r"vk\.key: the downloaded bytes have sha256"):
            cache.get(tiny.bundle.model_id, tiny.bundle.digest)
        folder = tmp_path / tiny.bundle.model_id / tiny.bundle.digest
        assert not (folder / b.VK).exists()
        assert not (folder / f"{b.VK}.part").exists()
        assert not (folder / ".complete").exists()
        assert cache.cached_models() == []
        # once the service serves the right bytes, the next lease completes the cache
        del server.corrupt[b.VK]
        assert cache.get(tiny.bundle.model_id, tiny.bundle.digest).digest == tiny.bundle.digest


def test_a_file_changed_after_download_is_caught_by_the_bundle_digests(
    tiny: Compiled, tmp_path: Path
) -> None:
    """A listing that agrees with a swapped file (a compromised service or mirror) still cannot
    pass the manifest's digests."""
    with serve_bundle(tiny.bundle) as server:
        server.corrupt[b.VK] = 40
        server.list_served_bytes = True
        with pytest.raises(ArtifactError, match=r"vk\.key: digest mismatch"):
            _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
        assert not (tmp_path / tiny.bundle.model_id / tiny.bundle.digest / ".complete").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "../../escape", "unsafe file"),
        ("name", "pk.key.part", "unsafe file"),
        ("sha256", "not-hex", "no valid sha256"),
    ],
)
def test_a_listing_with_unsafe_entries_is_refused(
    tiny: Compiled, tmp_path: Path, field: str, value: str, message: str
) -> None:
    with serve_bundle(tiny.bundle) as server:
        listing = server.listing()
        files = listing["files"]
        assert isinstance(files, list)
        files[0][field] = value
        server.listing_override = listing
        with pytest.raises(ArtifactError, match=message):
            _cache(server, tmp_path).get(tiny.bundle.model_id, tiny.bundle.digest)
    assert not (tmp_path / "escape").exists()


def test_a_listing_for_another_bundle_is_refused(tiny: Compiled, tmp_path: Path) -> None:
    with serve_bundle(tiny.bundle) as server:
        with pytest.raises(ArtifactError, match="refusing to prove with it"):
            _cache(server, tmp_path).get(tiny.bundle.model_id, "ab" * 32)
        with pytest.raises(ArtifactError, match="not a usable model id"):
            _cache(server, tmp_path).get("../" + tiny.bundle.model_id, tiny.bundle.digest)
        with pytest.raises(ArtifactError, match="not a SHA-256 digest"):
            _cache(server, tmp_path).get(tiny.bundle.model_id, "../x")
