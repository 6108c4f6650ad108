"""What this zkinfer is and which bundles it makes: a leaf that imports nothing, so any layer can
read it without an import cycle (the package metadata reads ``__version__`` from here too)."""

from __future__ import annotations

__all__ = ["BUNDLE_FORMAT", "EZKL_VERSION", "__version__"]

__version__ = "0.1.0"

#: The layout of a bundle's ``manifest.json``; a manifest of any other format is refused.
BUNDLE_FORMAT = "zkinfer-bundle/1"

#: The ezkl every bundle is made and read with (pinned in pyproject.toml): proof and key formats
#: change between ezkl versions, so a bundle of another version is refused.
EZKL_VERSION = "23.0.5"
