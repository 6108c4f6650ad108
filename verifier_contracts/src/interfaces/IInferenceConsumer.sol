// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IInferenceConsumer
/// @notice Implemented by contracts that want the proven result of an inference they requested.
interface IInferenceConsumer {
    /// @notice Called by the market once a request is settled with a valid proof.
    /// @dev Called with exactly `CALLBACK_GAS_LIMIT` gas, after settlement: a revert is recorded
    ///      (`ConsumerCallbackFailed`) but cannot undo the settlement. Implementations must check
    ///      both that `msg.sender` is the market AND that `requestId` is a request they made
    ///      themselves (the contract itself called `requestInference`, so the market recorded it as
    ///      the requester): anyone can open a request naming any contract as its consumer, for any
    ///      model they registered. Before requesting, they must check the registration they pin
    ///      (`registrationIdOf(registrant, modelId)`: the registrant they trust; `getModel`:
    ///      verifier code hash, digests; `layoutHashOf`) against the bundle they trust.
    /// @param requestId The settled request.
    /// @param registrationId The registration whose pinned verifier accepted the proof.
    /// @param outputs The proven outputs, signed fixed point (value = output / 2**outputScale).
    /// @param outputScale The model's output scale.
    function onInferenceResult(uint256 requestId, bytes32 registrationId, int256[] calldata outputs, uint8 outputScale)
        external;
}
