// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {InferenceMarket} from "../InferenceMarket.sol";

/// @title MinimalConsumer
/// @notice The smallest consumer worth copying: for requests its owner made for ONE registration, it
///         records the index of the largest proven output (the class, for a classifier). The
///         outputs themselves stay in the market (`market.outputsOf(requestId)`), so the callback
///         fits its 200,000 gas for any output count.
/// @dev Everything it pins comes from `zkinfer encode-request BUNDLE --input IN.json`:
///      `registration_id` (the model id and the registrant you trust), `verifier_code_hash` and
///      `layout_hash`. A registration never changes, so checking the code hash and layout once, in
///      the constructor, covers every later result. Callbacks are accepted only from the market,
///      for the pinned registration, and for requests whose requester is this contract or its
///      owner (`zkinfer request BUNDLE --input IN.json --consumer THIS` from the owner's account):
///      anyone can name any contract as a consumer.
contract MinimalConsumer is IInferenceConsumer {
    /// @notice The market that calls back.
    InferenceMarket public immutable market;
    /// @notice The only registration whose results are accepted.
    bytes32 public immutable registrationId;
    /// @notice The account whose requests are accepted (besides this contract's own).
    address public immutable owner;

    /// @notice The index of the largest proven output of each accepted request, plus one (0: none).
    mapping(uint256 requestId => uint256) public classPlusOne;

    /// @notice A proven result was accepted; `outputs` are signed fixed point (`/ 2**outputScale`).
    event Result(uint256 indexed requestId, uint256 classIndex, int256[] outputs, uint8 outputScale);

    /// @notice The registration is not the trusted verifier with the trusted layout.
    error MinimalConsumerUntrustedRegistration(bytes32 registrationId);
    /// @notice The callback does not come from the market, or is not for a request we trust.
    error MinimalConsumerRejected(uint256 requestId);

    /// @param market_ The market.
    /// @param registrationId_ `registration_id` from `zkinfer encode-request`.
    /// @param verifierCodeHash `verifier_code_hash` from `zkinfer encode-request`.
    /// @param layoutHash `layout_hash` from `zkinfer encode-request`.
    constructor(InferenceMarket market_, bytes32 registrationId_, bytes32 verifierCodeHash, bytes32 layoutHash) {
        if (
            market_.getModel(registrationId_).verifierCodeHash != verifierCodeHash
                || market_.layoutHashOf(registrationId_) != layoutHash
        ) revert MinimalConsumerUntrustedRegistration(registrationId_);
        market = market_;
        registrationId = registrationId_;
        owner = msg.sender;
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(uint256 requestId, bytes32 registrationId_, int256[] calldata proven, uint8 outputScale)
        external
    {
        address requester = market.getRequest(requestId).requester;
        if (
            msg.sender != address(market) || registrationId_ != registrationId
                || (requester != owner && requester != address(this)) || classPlusOne[requestId] != 0
        ) revert MinimalConsumerRejected(requestId);
        uint256 best;
        for (uint256 i = 1; i < proven.length; ++i) {
            if (proven[i] > proven[best]) best = i;
        }
        classPlusOne[requestId] = best + 1;
        emit Result(requestId, best, proven, outputScale);
    }
}
