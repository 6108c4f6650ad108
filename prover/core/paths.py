"""Where zkinfer keeps its caches and finds the tools it shells out to."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "repo_root", "solc_script"]


def cache_dir() -> Path:
    """The cache directory (``$ZKINFER_HOME`` or ``$XDG_CACHE_HOME/zkinfer``), created if needed."""
    env = os.environ.get("ZKINFER_HOME")
    if env:
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "zkinfer"
    base.mkdir(parents=True, exist_ok=True)
    return base


def repo_root() -> Path:
    """The source checkout this package was installed from (editable installs and the tests)."""
    return Path(__file__).resolve().parents[2]


def solc_script() -> Path:
    """The solc-like wrapper around solc-js (``$ZKINFER_SOLC_JS`` overrides the checkout's copy)."""
    env = os.environ.get("ZKINFER_SOLC_JS")
    if env:
        return Path(env)
    return repo_root() / "verifier_contracts" / "scripts" / "solc.js"
