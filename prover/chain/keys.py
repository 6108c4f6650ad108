"""Signing keys: from ``ZKINFER_PRIVATE_KEY`` or an encrypted keystore, never from the command line.

No function here prints, logs or puts a key into an error message.
"""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from prover.errors import SignerError
from prover.settings import get_settings

__all__ = [
    "DEVNET_KEYS",
    "KEYSTORE_PASSWORD_ENV",
    "PRIVATE_KEY_ENV",
    "devnet_signer",
    "load_signer",
]

PRIVATE_KEY_ENV = "ZKINFER_PRIVATE_KEY"
KEYSTORE_PASSWORD_ENV = "ZKINFER_KEYSTORE_PASSWORD"

#: anvil's default accounts 0-3 (mnemonic "test test ... junk"): public, funded only on a devnet.
DEVNET_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)


def _from_private_key(text: str, origin: str) -> LocalAccount:
    try:
        account: LocalAccount = Account.from_key(text.strip())
    except (ValueError, TypeError):
        raise SignerError(f"{origin} is not a 32-byte hex private key") from None
    return account


def load_signer(keystore: Path | None = None) -> LocalAccount | None:
    """The configured signer: ``keystore`` (password from ``ZKINFER_KEYSTORE_PASSWORD``) or
    ``ZKINFER_PRIVATE_KEY``; ``None`` when neither is set."""
    if keystore is not None:
        secret = get_settings().keystore_password
        if secret is None:
            raise SignerError(
                f"{keystore}: set {KEYSTORE_PASSWORD_ENV} to the keystore's password",
                field="keystore",
            )
        try:
            doc = json.loads(Path(keystore).read_text())
        except (OSError, ValueError) as exc:
            raise SignerError(
                f"{keystore}: cannot read it as JSON ({exc})", field="keystore"
            ) from None
        try:
            key = Account.decrypt(doc, secret.get_secret_value())
        except (ValueError, KeyError, TypeError):
            raise SignerError(
                f"{keystore}: cannot decrypt it (wrong password or not a keystore)",
                field="keystore",
            ) from None
        return _from_private_key(key.hex(), f"the key in {keystore}")
    configured = get_settings().private_key
    if configured is not None:
        return _from_private_key(configured.get_secret_value(), PRIVATE_KEY_ENV)
    return None


def devnet_signer(index: int = 0) -> LocalAccount:
    """One of anvil's public development accounts (only meaningful on a local devnet)."""
    return _from_private_key(DEVNET_KEYS[index], f"devnet account {index}")
