"""The worker's bundle cache: content-addressed downloads, resumable, checked before use.

A bundle lives under ``$ZKINFER_CACHE_DIR/worker/bundles/<model id>/<bundle digest>/``. Each file is
downloaded into ``<name>.part`` (resumed with an HTTP Range request after an interruption: proving
keys are hundreds of MB), its SHA-256 checked against the service's listing, and only then moved
into place. The finished folder is opened with the core's own digest checks, and its bundle
digest (SHA-256 of the canonical manifest, which holds every file's digest) must be the one the
lease names: a worker never proves with a bundle it cannot account for. Processes sharing one
cache take a file lock per bundle while they download.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from prover.core import bundle as b
from prover.core.hashing import sha256_file
from prover.core.progress import NullProgress, Progress
from prover.errors import ArtifactError, ServiceError
from prover.protocol import BundleFile, BundleListing
from prover.settings import get_settings
from prover.worker.client import ServiceClient

__all__ = ["BundleCache", "Stopped"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
#: The service's model ids are names (one path component here), not content addresses.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class Stopped(Exception):
    """The download was abandoned because the worker is stopping (the ``.part`` file is kept)."""


def _check_listing(listing: BundleListing, model_id: str, digest: str) -> None:
    """The listing must be for the leased bundle and name only plain files with hex digests."""
    if listing.model_id != model_id or listing.bundle_digest != digest:
        raise ArtifactError(
            f"the service listed bundle {listing.bundle_digest[:16]}… of model "
            f"{listing.model_id[:16]}… for a lease on bundle {digest[:16]}… of model "
            f"{model_id[:16]}…; refusing to prove with it"
        )
    names = [f.name for f in listing.files]
    for f in listing.files:
        if not _SAFE_NAME.fullmatch(f.name) or f.name.endswith(".part"):
            raise ArtifactError(f"the bundle listing names an unsafe file {f.name!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", f.sha256) or f.size < 0:
            raise ArtifactError(f"the bundle listing's entry for {f.name} has no valid sha256")
    if len(set(names)) != len(names) or b.MANIFEST not in names:
        raise ArtifactError("the bundle listing repeats a file or lacks manifest.json")


class BundleCache:
    """Bundles this worker has downloaded, per model and bundle digest."""

    def __init__(
        self,
        client: ServiceClient,
        root: Path | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.root = root or get_settings().worker_cache_dir / "bundles"
        self.progress = progress or NullProgress()
        self.stop = stop or threading.Event()
        self._ready: dict[tuple[str, str], b.Bundle] = {}

    def cached_models(self) -> list[str]:
        """Model ids with at least one complete bundle on disk (most recently used first)."""
        if not self.root.is_dir():
            return []
        done = [m / ".complete" for m in self.root.glob("*/*")]
        done = [p for p in done if p.is_file()]
        done.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return list(dict.fromkeys(p.parent.parent.name for p in done))

    def folder(self, model_id: str, digest: str) -> Path:
        if not _MODEL_ID.fullmatch(model_id) or ".." in model_id:
            raise ArtifactError(f"the lease names model {model_id[:80]!r}: not a usable model id")
        if not _DIGEST.fullmatch(digest):
            raise ArtifactError(f"the lease names bundle {digest[:80]!r}: not a SHA-256 digest")
        return self.root / model_id / digest

    def get(self, model_id: str, digest: str) -> b.Bundle:
        """The checked bundle for ``(model_id, digest)``, downloading what is missing."""
        key = (model_id, digest)
        if key in self._ready:
            return self._ready[key]
        folder = self.folder(model_id, digest)
        folder.mkdir(parents=True, exist_ok=True)
        with self._locked(folder):
            if not (folder / ".complete").is_file():
                listing = self.client.bundle_listing(model_id)
                _check_listing(listing, model_id, digest)
                total = sum(f.size for f in listing.files)
                self.progress.note(
                    f"downloading bundle {digest[:16]}… of model {model_id[:16]}… "
                    f"({total / 1e6:.1f} MB, {len(listing.files)} files)"
                )
                for f in listing.files:
                    self.fetch_file(folder, f)
            bundle = b.load_bundle(folder, check=b.PROVE_FILES)
            if bundle.digest != digest:
                raise ArtifactError(
                    f"{folder}: the downloaded manifest is of bundle {bundle.digest[:16]}…, not "
                    f"the leased {digest[:16]}…; delete the folder"
                )
            (folder / ".complete").touch()
        self._ready[key] = bundle
        return bundle

    @contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        with (folder / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def fetch_file(self, folder: Path, entry: BundleFile) -> Path:
        """Download one listed file into ``folder`` (resuming a ``.part`` file), checked."""
        final = folder / entry.name
        if final.is_file():
            if final.stat().st_size == entry.size and sha256_file(final) == entry.sha256:
                return final
            final.unlink()  # stale or damaged: fetch it again
        part = folder / f"{entry.name}.part"
        refetched = False
        for attempt in range(1, self.client.retry.attempts + 1):
            resumed = self._download(entry, part)
            if part.stat().st_size < entry.size:  # the connection dropped: resume from there
                self.client.retry.sleep(self.client.retry.delay(attempt))
                continue
            actual = sha256_file(part)
            if actual == entry.sha256:
                os.replace(part, final)
                return final
            part.unlink()
            if not resumed or refetched:
                raise ArtifactError(
                    f"{entry.name}: the downloaded bytes have sha256 {actual[:16]}…, the service "
                    f"listed {entry.sha256[:16]}…; the file is damaged on the service or in "
                    "transit: deleted, it is fetched again on the next lease"
                )
            refetched = True  # the kept .part was damaged: fetch the whole file once more
        raise ServiceError(
            f"{entry.name}: the download kept breaking off (at byte {part.stat().st_size:,} of "
            f"{entry.size:,}); it resumes from there on the next lease"
        )

    def _download(self, entry: BundleFile, part: Path) -> bool:
        """Bring ``part`` towards ``entry.size`` bytes; True when earlier bytes were reused.

        A connection that breaks off mid-file leaves the bytes received so far in ``part``.
        """
        have = part.stat().st_size if part.is_file() else 0
        if have > entry.size:
            have = 0
        if have == entry.size and have > 0:
            return True
        with self.client.download(entry.url, have) as response:
            if response.status_code == 416:  # nothing after `have`: the digest decides
                return have > 0
            content_range = response.headers.get("content-range", "")
            if response.status_code != 206 or not content_range.startswith(f"bytes {have}-"):
                have = 0  # the service sent the whole file: start over
            if have:
                self.progress.note(f"resuming {entry.name} at byte {have:,} of {entry.size:,}")
            written = have
            with part.open("ab" if have else "wb") as out:
                try:
                    for chunk in response.iter_bytes():  # as received: a cut keeps every byte
                        if self.stop.is_set():
                            raise Stopped(f"stopped while downloading {entry.name}")
                        written += len(chunk)
                        if written > entry.size:
                            raise ArtifactError(
                                f"{entry.name}: the service sent more than the listed "
                                f"{entry.size:,} bytes"
                            )
                        out.write(chunk)
                except httpx.TransportError as exc:
                    self.progress.note(
                        f"{entry.name}: the download broke off at byte {written:,} "
                        f"({type(exc).__name__})"
                    )
        return have > 0
