"""Where zkinfer finds the tools it shells out to, and moves state kept where it no longer lives.

The layout of the data directory and the cache is spelled once: :class:`~prover.settings.Settings`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from prover.settings import Settings, get_settings

__all__ = ["move_legacy_state", "repo_root", "solc_script"]

#: Durable state that versions before the data directory kept in the cache folder.
_LEGACY_DIRS = ("deployments", "devnet")


def repo_root() -> Path:
    """The source checkout this package was installed from (editable installs and the tests)."""
    return Path(__file__).resolve().parents[2]


def solc_script() -> Path:
    """The solc-like wrapper around solc-js (``$ZKINFER_SOLC_JS`` overrides the checkout's copy)."""
    return get_settings().solc_js or repo_root() / "verifier_contracts" / "scripts" / "solc.js"


def _running_devnet(folder: Path) -> int | None:
    """The pid of a devnet running from ``folder``, if one does."""
    try:
        pid = int(json.loads((folder / "devnet.json").read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):  # no record, or no such process
        return None
    return pid


def _legacy_items(old: Path, new: Path) -> list[tuple[Path, Path]]:
    """(old, new) pairs of durable state found in the cache folder, folders and cursor files."""
    items = [(old / name, new / name) for name in _LEGACY_DIRS if (old / name).is_dir()]
    cursors = old / "worker"
    if cursors.is_dir():  # the chain worker's cursors; bundles/ and proofs/ stay: they are cache
        items += [(f, new / "worker" / f.name) for f in sorted(cursors.glob("*.json"))]
    return items


def move_legacy_state(settings: Settings | None = None) -> list[str]:
    """Move deployments records, the devnet's state and worker cursors that an earlier version
    kept in the cache folder into the data directory; return one line per thing moved or left.

    Nothing is overwritten: where both places hold something, the cache's copy stays and a line
    says so. A devnet still running from the cache folder is left until it is stopped. SRS files
    in the data directory (where a ``ZKINFER_HOME`` of an earlier version kept them) are only
    named: they may be large, and the user may want the cache where they are.
    """
    settings = settings or get_settings()
    old, new = settings.cache_dir, settings.home
    with contextlib.suppress(OSError):
        if old.resolve() == new.resolve():
            return []
    notes = []
    for source, target in _legacy_items(old, new):
        pid = _running_devnet(source) if source.name == "devnet" else None
        if pid is not None:
            notes.append(
                f"the devnet (pid {pid}) still runs from {source}: stop it with `kill {pid}` "
                f"(it saves its chain on exit), then any zkinfer command moves it to {target}"
            )
        elif target.exists():
            notes.append(f"{source} was left in place: {target} already exists (merge by hand)")
        else:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(source, target)
            except OSError as exc:
                notes.append(f"could not move {source} to {target} ({exc}): move it by hand")
            else:
                notes.append(f"moved {source} to {target} (durable state lives in ZKINFER_HOME)")
    if (new / "srs").is_dir() and not settings.srs_dir.exists():
        notes.append(
            f"SRS files in {new / 'srs'} are no longer read (the cache is {old}): move them to "
            f"{settings.srs_dir}, or set ZKINFER_CACHE_DIR={new}"
        )
    return notes
