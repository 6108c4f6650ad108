"""The version leaf: one place for the package version, bundle format and pinned ezkl."""

from __future__ import annotations

import ast
import tomllib

import prover
from prover import version
from prover.core import ezkl_backend
from tests.helpers import REPO, zkinfer


def test_version_module_imports_nothing_of_the_package() -> None:
    tree = ast.parse((REPO / "prover" / "version.py").read_text())
    imported = [
        alias.name if isinstance(node, ast.Import) else node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert [name for name in imported if name.split(".")[0] == "prover"] == []


def test_pyproject_pins_the_ezkl_bundles_are_made_with_and_reads_the_version_leaf() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert f"ezkl=={version.EZKL_VERSION}" in project["project"]["dependencies"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "prover/version.py"
    assert ezkl_backend.INSTALLED_EZKL_VERSION == version.EZKL_VERSION
    assert prover.__version__ == version.__version__


def test_cli_prints_the_leaf_version() -> None:
    result = zkinfer("--version")
    assert result.code == 0
    assert version.__version__ in result.stdout
