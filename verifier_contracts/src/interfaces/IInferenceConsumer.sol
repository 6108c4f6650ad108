// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IInferenceConsumer
/// @notice Implemented by contracts that want the proven result of an inference they requested.
interface IInferenceConsumer {
    /// @notice Called by the market once a request is settled with a valid proof.
    /// @dev Called with exactly `CALLBACK_GAS_LIMIT` gas, after settlement: a revert is recorded
    ///      (`ConsumerCallbackFailed`) but cannot undo the settlement. Implementations must check
    ///      that `msg.sender` is the market, that `registrationId` is the registration they pin
    ///      (`registrationIdOf(registrant, modelId)`: the model AND the registrant they trust,
    ///      checked once against the bundle they trust: `getModel(...).verifierCodeHash`,
    ///      `layoutHashOf`), AND that the request's requester is one they trust: themselves (a
    ///      request the contract made, as `ScreeningConsumer` does) or an account they name (its
    ///      owner, as `MinimalConsumer` does, so that `zkinfer request --consumer` from that
    ///      account works; read it with `getRequest(requestId).requester`). Anyone can open a
    ///      request naming any contract as its consumer.
    /// @param requestId The settled request.
    /// @param registrationId The registration whose pinned verifier accepted the proof.
    /// @param outputs The proven outputs, signed fixed point (value = output / 2**outputScale).
    /// @param outputScale The model's output scale.
    function onInferenceResult(uint256 requestId, bytes32 registrationId, int256[] calldata outputs, uint8 outputScale)
        external;
}
