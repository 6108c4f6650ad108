"""One error tree for the whole package.

Every error a user can cause or meet is a leaf of :class:`ZkinferError`. The CLI maps each leaf to
an exit code once (``exit_code``) and the HTTP layer maps them to status codes once; nothing else
inspects messages. An error names the value and the problem in its message, the parameter at
fault in ``field`` and what to do in ``hint``, in words that suit every front end: only the CLI
words a field as a flag (``--rpc-url``), only the HTTP layer as a field of its problem document.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "ArtifactError",
    "ChainError",
    "CircuitError",
    "DatabaseUnavailable",
    "InputError",
    "ModelError",
    "ProofInvalid",
    "RpcUnavailable",
    "ServiceError",
    "SignerError",
    "SrsError",
    "ToolchainError",
    "TransactionReverted",
    "UsageError",
    "WrongChainError",
    "ZkinferError",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


#: A parameter named inside a hint: ``{dev_srs}``, rendered by each front end in its own words.
_HINT_FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def _plain(field: str) -> str:
    return field


class ZkinferError(Exception):
    """Base of every error raised on purpose by zkinfer.

    ``field`` is the parameter at fault (a Python name: ``out``, ``rpc_url``) and ``message``
    continues it: the value and the problem (``"/tmp/p is a folder"``, ``"0: must be at least
    1"``, ``"must be more than zero"``); ``hint`` says what to do. A hint that points at another
    parameter writes its name in braces (``"or pass {dev_srs} to generate one"``). :meth:`render`
    words every field the way a front end names it (the CLI as flags); ``str()`` keeps the Python
    names: ``"out /tmp/p is a folder; pass the path of the proof file to write"``.
    """

    exit_code: int = EXIT_ENVIRONMENT

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.field = field
        self.hint_template = hint
        super().__init__(self.render())

    @property
    def hint(self) -> str | None:
        """What to do, with the parameters it mentions under their Python names."""
        return self.render_hint()

    @property
    def hint_fields(self) -> tuple[str, ...]:
        """The parameters the hint mentions, in order."""
        names = _HINT_FIELD.findall(self.hint_template or "")
        return tuple(dict.fromkeys(names))

    def render_hint(self, name: Callable[[str], str] = _plain) -> str | None:
        """The hint with each ``{field}`` worded by ``name``."""
        if self.hint_template is None:
            return None
        return _HINT_FIELD.sub(lambda m: name(m.group(1)), self.hint_template)

    def render(self, name: Callable[[str], str] = _plain) -> str:
        """``field message; hint``, each field worded by ``name`` (a CLI flag, an HTTP field)."""
        text = f"{name(self.field)} {self.message}" if self.field else self.message
        hint = self.render_hint(name)
        return f"{text}; {hint}" if hint else text


class UsageError(ZkinferError, ValueError):
    """The command was called with arguments that cannot work together."""

    exit_code = EXIT_USAGE


class InputError(ZkinferError, ValueError):
    """An inference input is malformed, has the wrong shape, is not finite or is out of range."""

    exit_code = EXIT_USAGE


class ModelError(ZkinferError, ValueError):
    """An ONNX model is missing, malformed, too large, unsafe or uses an unsupported operator."""

    exit_code = EXIT_USAGE


class ArtifactError(ZkinferError):
    """A bundle or proof artifact is missing, unreadable or does not match its recorded digest."""

    exit_code = EXIT_ENVIRONMENT


class SrsError(ArtifactError):
    """No usable structured reference string (SRS) was found or the supplied one is unusable."""


class ToolchainError(ZkinferError):
    """An external tool (ezkl, node with solc-js) failed or is not installed."""

    exit_code = EXIT_ENVIRONMENT


class CircuitError(ToolchainError):
    """ezkl could not turn the model into a circuit, or could not build a witness or proof."""

    def __init__(
        self, message: str, *, log: str = "", field: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, field=field, hint=hint)
        self.log = log


class ProofInvalid(ZkinferError):
    """A proof did not verify (raised only where a caller asked for an exception, not a verdict)."""

    exit_code = EXIT_INVALID


class ChainError(ZkinferError):
    """An Ethereum RPC is unreachable or misbehaves, or a transaction could not be sent."""

    exit_code = EXIT_ENVIRONMENT


class RpcUnavailable(ChainError):
    """The RPC could not be reached or kept failing after retries."""


class WrongChainError(ChainError):
    """The RPC serves another chain than the one the user expects."""


class SignerError(ChainError):
    """No signing key is configured, or the configured key or keystore cannot be used."""


class TransactionReverted(ChainError):
    """A transaction or call reverted; ``error_name`` is the contract's custom error when known."""

    def __init__(
        self,
        message: str,
        *,
        error_name: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, field=field, hint=hint)
        self.error_name = error_name


class DatabaseUnavailable(ZkinferError):
    """The service's PostgreSQL could not be reached or refused the connection."""

    exit_code = EXIT_ENVIRONMENT


class ServiceError(ZkinferError):
    """A zkinfer service refused a request, answered with an error, or could not be reached.

    ``status`` is the HTTP status (``None`` when no answer came); ``problem`` the service's
    RFC 9457 problem document, when it sent one.
    """

    exit_code = EXIT_ENVIRONMENT

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: dict[str, object] | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, field=field, hint=hint)
        self.status = status
        self.problem = problem or {}
