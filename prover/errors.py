"""One error tree for the whole package.

Every error a user can cause or meet is a leaf of :class:`ZkinferError`. The CLI maps each leaf to
an exit code once (``exit_code``) and the HTTP layer maps them to status codes once; nothing else
inspects messages. Messages name the file or field at fault and say what to do.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ChainError",
    "CircuitError",
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


class ZkinferError(Exception):
    """Base of every error raised on purpose by zkinfer."""

    exit_code: int = EXIT_ENVIRONMENT


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

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message)
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

    def __init__(self, message: str, *, error_name: str | None = None) -> None:
        super().__init__(message)
        self.error_name = error_name


class ServiceError(ZkinferError):
    """A zkinfer service refused a request, answered with an error, or could not be reached.

    ``status`` is the HTTP status (``None`` when no answer came); ``problem`` the service's
    RFC 9457 problem document, when it sent one.
    """

    exit_code = EXIT_ENVIRONMENT

    def __init__(
        self, message: str, *, status: int | None = None, problem: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}
