"""One settings object for every ``ZKINFER_*`` variable, its documentation, where state lives."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

from prover.chain.deploy import Deployments
from prover.core.paths import move_legacy_state
from prover.errors import UsageError
from prover.settings import ENV_PREFIX, Settings, env_name, get_settings
from tests.helpers import REPO, own_home, zkinfer
from tests.helpers.chain import Anvil

PACKAGE = REPO / "prover"
SETTINGS_MODULE = PACKAGE / "settings.py"


def _documented_variables() -> list[str]:
    text = (REPO / "docs" / "configuration.md").read_text()
    table = text.split("## Every variable", 1)[1].split("\n\n", 2)[1]
    return re.findall(r"^\| `(ZKINFER_[A-Z0-9_]+)` \|", table, flags=re.MULTILINE)


def test_the_configuration_table_lists_every_setting_and_nothing_else() -> None:
    documented = _documented_variables()
    fields = [env_name(name) for name in Settings.model_fields]
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    assert sorted(set(fields) - set(documented)) == [], "settings missing from the table"
    assert sorted(set(documented) - set(fields)) == [], "the table names unknown variables"


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments, to resolve ``os.environ.get(NAME)``."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _environment_reads(tree: ast.Module) -> list[tuple[int, ast.expr | None]]:
    """(line, key) of every read of the environment: ``os.environ.get(k)``, ``os.environ[k]``,
    ``os.getenv(k)``, ``k in os.environ``, and typer's ``envvar=k``."""
    reads: list[tuple[int, ast.expr | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            getter = isinstance(func, ast.Attribute) and (
                (func.attr in ("get", "pop") and _is_environ(func.value)) or func.attr == "getenv"
            )
            if getter:
                reads.append((node.lineno, node.args[0] if node.args else None))
            reads += [(node.lineno, kw.value) for kw in node.keywords if kw.arg == "envvar"]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            reads.append((node.lineno, node.slice))
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            reads.append((node.lineno, node.left))
    return reads


def test_no_module_but_settings_reads_a_zkinfer_variable_from_the_environment() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == SETTINGS_MODULE:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        constants = _constants(tree)
        for line, key in _environment_reads(tree):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                name = key.value
            elif isinstance(key, ast.Name) and key.id in constants:
                name = constants[key.id]
            else:  # a computed name could be anything: spell it out, or read it in settings
                name = ENV_PREFIX + "?"
            if name.startswith(ENV_PREFIX):
                offenders.append(f"{path.relative_to(REPO)}:{line} reads {name}")
    assert offenders == [], "read these through prover.settings.get_settings():\n" + "\n".join(
        offenders
    )


def test_the_test_suites_own_variables_are_named_in_the_configuration_guide() -> None:
    guide = (REPO / "docs" / "configuration.md").read_text()
    missing = set()
    for path in sorted((REPO / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        constants = _constants(tree)
        for _, key in _environment_reads(tree):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                name = key.value
            elif isinstance(key, ast.Name) and key.id in constants:
                name = constants[key.id]
            else:
                continue
            if name.startswith(ENV_PREFIX) and f"`{name}`" not in guide:
                missing.add(name)
    assert sorted(missing) == []


def test_the_environment_check_sees_each_kind_of_read() -> None:
    source = (
        'import os\nfrom os import environ\nNAME = "ZKINFER_X"\n'
        "os.environ.get(NAME)\nos.environ['ZKINFER_Y']\nos.getenv('ZKINFER_Z')\n"
        "'ZKINFER_W' in environ\nf(envvar='ZKINFER_V')\nos.environ.get('HOME')\n"
        "env = {**os.environ, 'ZKINFER_CHILD': '1'}\n"
    )
    tree = ast.parse(source)
    constants = _constants(tree)
    names = [
        constants.get(k.id, k.id) if isinstance(k, ast.Name) else getattr(k, "value", None)
        for _, k in _environment_reads(tree)
    ]
    assert sorted(map(str, names)) == [
        "HOME",
        "ZKINFER_V",
        "ZKINFER_W",
        "ZKINFER_X",
        "ZKINFER_Y",
        "ZKINFER_Z",
    ]


def test_a_malformed_variable_is_a_usage_error_naming_it_and_the_fix(tmp_path: Path) -> None:
    env = {"ZKINFER_HOME": str(own_home(tmp_path)), "ZKINFER_CHAIN_ID": "mainnet"}
    result = zkinfer("devnet", "status", "--json", env=env)
    assert result.code == 2, result.stderr
    message = result.json["error"]["message"]
    assert "ZKINFER_CHAIN_ID='mainnet'" in message and "valid integer" in message
    assert "correct it or unset it" in message and "docs/configuration.md" in message
    assert "Traceback" not in result.stderr
    bad_size = {**env, "ZKINFER_CHAIN_ID": "", "ZKINFER_EZKL_MEMORY_LIMIT": "lots"}
    result = zkinfer("devnet", "status", "--json", env=bad_size)
    assert result.code == 2 and "8G or 512M" in result.json["error"]["message"]


def test_commands_that_do_not_serve_ignore_the_services_safety_rules(tmp_path: Path) -> None:
    env = {"ZKINFER_HOME": str(own_home(tmp_path)), "ZKINFER_API_KEYS": "short"}
    result = zkinfer("devnet", "status", "--json", env=env)
    assert result.code == 0, result.stderr
    assert result.json["running"] is False
    served = zkinfer("serve", "--json", env={**env, "ZKINFER_PROVIDER_KEYS": "p" * 16})
    assert served.code == 2 and "at least 16" in served.json["error"]["message"]


def test_settings_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("ZKINFER_MAX_TENSOR_ELEMENTS", "7")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().max_tensor_elements == 7
    monkeypatch.setenv("ZKINFER_MAX_TENSOR_ELEMENTS", "0")
    get_settings.cache_clear()
    with pytest.raises(UsageError, match="ZKINFER_MAX_TENSOR_ELEMENTS='0'"):
        get_settings()


def test_the_queue_limit_per_client_is_a_number_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_queued_per_client == 1000
    for off in ("0", "none", "None"):
        monkeypatch.setenv("ZKINFER_MAX_QUEUED_PER_CLIENT", off)
        assert Settings().max_queued_per_client is None
    monkeypatch.setenv("ZKINFER_MAX_QUEUED_PER_CLIENT", "25")
    assert Settings().max_queued_per_client == 25
    monkeypatch.setenv("ZKINFER_MAX_QUEUED_PER_CLIENT", "-1")
    get_settings.cache_clear()
    with pytest.raises(UsageError, match=r"ZKINFER_MAX_QUEUED_PER_CLIENT='-1'.*no limit"):
        get_settings()
    get_settings.cache_clear()


def test_the_directories_follow_xdg_and_an_empty_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("ZKINFER_HOME", "")
    monkeypatch.delenv("ZKINFER_CACHE_DIR")
    settings = Settings()
    assert settings.home == tmp_path / "data" / "zkinfer"
    assert settings.cache_dir == tmp_path / "cache" / "zkinfer"
    assert settings.srs_dir == tmp_path / "cache" / "zkinfer" / "srs"
    assert Deployments(31337, settings).path == settings.home / "deployments" / "31337.json"
    assert settings.devnet_dir.parent == settings.worker_state_dir.parent == settings.home
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # the XDG spec: ignored
    assert Settings().home == Path.home() / ".local" / "share" / "zkinfer"


def _legacy_cache(cache: Path) -> None:
    """What an earlier version kept in its cache folder: durable state beside real cache."""
    (cache / "deployments").mkdir(parents=True)
    (cache / "deployments" / "31337.json").write_text('{"market": "0xabc"}')
    (cache / "devnet").mkdir()
    (cache / "devnet" / "state.json").write_text("{}")
    (cache / "worker" / "bundles" / "m").mkdir(parents=True)
    (cache / "worker" / "31337-0xabc.json").write_text('{"from_block": 5}')
    (cache / "srs" / "dev-unsafe").mkdir(parents=True)


def test_durable_state_in_the_old_cache_folder_moves_to_the_data_directory(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "data", cache_dir=tmp_path / "cache")
    _legacy_cache(settings.cache_dir)
    notes = move_legacy_state(settings)
    assert len(notes) == 3 and all(n.startswith("moved ") for n in notes)
    assert json.loads(settings.deployments_file(31337).read_text()) == {"market": "0xabc"}
    assert (settings.devnet_dir / "state.json").is_file()
    assert (settings.worker_state_dir / "31337-0xabc.json").is_file()
    assert not (settings.cache_dir / "deployments").exists()
    # what can be rebuilt stays in the cache
    assert (settings.cache_dir / "worker" / "bundles" / "m").is_dir()
    assert (settings.srs_dir / "dev-unsafe").is_dir()
    assert not (settings.home / "srs").exists()
    assert move_legacy_state(settings) == []


def test_nothing_is_overwritten_and_a_running_devnet_is_left_in_place(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "data", cache_dir=tmp_path / "cache")
    _legacy_cache(settings.cache_dir)
    (settings.cache_dir / "devnet" / "devnet.json").write_text(json.dumps({"pid": os.getpid()}))
    settings.deployments_file(31337).parent.mkdir(parents=True)
    settings.deployments_file(31337).write_text('{"market": "0xnew"}')
    notes = move_legacy_state(settings)
    assert any("already exists" in n for n in notes)
    assert any(f"pid {os.getpid()}" in n and "still runs" in n for n in notes)
    assert json.loads(settings.deployments_file(31337).read_text()) == {"market": "0xnew"}
    assert (settings.cache_dir / "deployments" / "31337.json").is_file()
    assert (settings.cache_dir / "devnet" / "state.json").is_file()


def test_the_cli_moves_old_state_once_and_says_so(tmp_path: Path) -> None:
    env = {
        "ZKINFER_HOME": "",
        "ZKINFER_CACHE_DIR": "",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    _legacy_cache(tmp_path / "cache" / "zkinfer")
    result = zkinfer("devnet", "status", "--json", env=env)
    assert result.code == 0, result.stderr
    data = tmp_path / "data" / "zkinfer"
    assert result.json["state_file"] == str(data / "devnet" / "state.json")
    assert "moved" in result.stderr and str(data / "deployments") in result.stderr
    assert (data / "deployments" / "31337.json").is_file()
    again = zkinfer("devnet", "status", "--json", env=env)
    assert again.code == 0 and "moved" not in again.stderr


@pytest.mark.anvil
def test_rpc_url_and_chain_id_come_from_the_environment(anvil: Anvil, tmp_path: Path) -> None:
    env = {"ZKINFER_HOME": str(own_home(tmp_path)), "ZKINFER_RPC_URL": anvil.url}
    wrong_chain = zkinfer("result", "1", "--json", env={**env, "ZKINFER_CHAIN_ID": "1"})
    assert wrong_chain.code == 3 and wrong_chain.json["error"]["type"] == "WrongChainError"
    # the option wins over the variable
    pinned = zkinfer(
        "result", "1", "--chain-id", str(anvil.chain_id), "--json",
        env={**env, "ZKINFER_CHAIN_ID": "1"},
    )  # fmt: skip
    assert pinned.json["error"]["type"] != "WrongChainError"
    assert "devnet" not in pinned.stderr  # the RPC URL came from the variable: no devnet started
