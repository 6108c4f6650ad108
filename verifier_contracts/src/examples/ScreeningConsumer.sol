// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {InferenceMarket} from "../InferenceMarket.sol";

/// @title ScreeningConsumer
/// @notice An example dApp acting on a proven inference: a clinic's screening contract that
///         requests the tabular breast-cancer model (`breast_cancer_mlp`, outputs: logit 0 =
///         malignant, logit 1 = benign) and refers a case for specialist review when the proven
///         malignant logit exceeds the benign one by at least `referralThreshold`.
/// @dev Pins the registration (`market.registrationIdOf(registrant, modelId)`: the model id AND
///      the account that registered it), its verifier's code hash AND its instance layout. A result
///      is only trusted because the market checked it with the verifier pinned for that
///      registration, against the request's input commitment. Anyone may register the reference
///      model's id under their own registration id (with an accept-all verifier, or with the
///      genuine, public verifier but another layout, or hostile lock terms, and then pause it);
///      pinning the registration id ignores all of those, and pinning the code hash and
///      `market.layoutHashOf` refuses a registrant who registered the wrong verifier or layout
///      (e.g. a smaller `inputCount` that leaves part of the input uncommitted, or other output
///      scales). A registration never changes, so every request this contract made (the only ones
///      whose callbacks it accepts) is settled by the trusted verifier with the trusted layout.
///      Refunds and slashed stakes are owed to this contract by the market; `withdrawRefunds`
///      forwards them to the owner.
contract ScreeningConsumer is IInferenceConsumer {
    /// @notice The market that settles requests and calls back.
    InferenceMarket public immutable market;

    /// @notice The only registration (model id and registrant) whose results this contract acts on.
    bytes32 public immutable registrationId;

    /// @notice The code hash the model's registered verifier must have (the trusted ezkl verifier).
    bytes32 public immutable verifierCodeHash;

    /// @notice The `market.layoutHashOf(registrationId)` the model's registration must have (the trusted
    ///         bundle's instance layout and scales).
    bytes32 public immutable layoutHash;

    /// @notice Minimum `malignant - benign` logit margin that triggers a referral, in the model's
    ///         fixed point (value * 2**outputScale; the reference model's scale is 13).
    int256 public immutable referralThreshold;

    /// @notice The clinic operating this contract: it requests screenings and receives refunds.
    address public immutable owner;

    /// @notice Whether a request id was made by this contract.
    mapping(uint256 requestId => bool) public isScreening;

    /// @notice Whether the proven result of a screening has been received.
    mapping(uint256 requestId => bool) public screened;

    /// @notice Whether a screened case was referred for specialist review.
    mapping(uint256 requestId => bool) public referred;

    /// @notice A screening was requested from the market.
    event ScreeningRequested(uint256 indexed requestId, bytes32 inputCommitment);

    /// @notice The proven result of a screening arrived.
    event CaseScreened(uint256 indexed requestId, int256 malignantMargin, bool referred);

    /// @notice A case was referred for specialist review.
    event CaseReferred(uint256 indexed requestId, int256 malignantMargin);

    /// @notice Only the owner may do this.
    error ScreeningConsumerNotOwner(address caller);
    /// @notice Only the market may call back.
    error ScreeningConsumerNotMarket(address caller);
    /// @notice The registration is not the one this contract pins.
    error ScreeningConsumerWrongModel(bytes32 registrationId);
    /// @notice The registration's verifier or layout is not the one this contract pins (or no
    ///         such registration).
    error ScreeningConsumerUntrustedModel(bytes32 registrationId);
    /// @notice The request was not made by this contract.
    error ScreeningConsumerUnknownRequest(uint256 requestId);
    /// @notice The screening already has its result.
    error ScreeningConsumerAlreadyScreened(uint256 requestId);
    /// @notice The model did not produce exactly two logits.
    error ScreeningConsumerBadOutputs(uint256 count);
    /// @notice Forwarding funds to the owner failed.
    error ScreeningConsumerTransferFailed();

    /// @param market_ The market.
    /// @param registrationId_ The breast-cancer model's registration: `market.registrationIdOf(registrant,
    ///        modelId)` for the registrant this clinic trusts.
    /// @param verifierCodeHash_ The code hash of the model's trusted ezkl verifier.
    /// @param layoutHash_ The trusted layout's hash, as `InferenceMarket.layoutHashOf` computes it.
    /// @param referralThreshold_ Minimum malignant-minus-benign logit margin (fixed point) to refer.
    constructor(
        InferenceMarket market_,
        bytes32 registrationId_,
        bytes32 verifierCodeHash_,
        bytes32 layoutHash_,
        int256 referralThreshold_
    ) {
        market = market_;
        registrationId = registrationId_;
        verifierCodeHash = verifierCodeHash_;
        layoutHash = layoutHash_;
        referralThreshold = referralThreshold_;
        owner = msg.sender;
    }

    /// @notice Requests a screening, forwarding `msg.value` as the market reward. Reverts unless the
    ///         model is registered with the pinned verifier code hash and layout hash.
    /// @param registrationId_ Must equal the pinned `registrationId` (guards against a misconfigured caller).
    /// @param inputCommitment The market commitment to the case's input instances.
    /// @param inputData The case's inputs for providers (opaque, emitted by the market).
    /// @param deadline Last timestamp at which the request can be fulfilled.
    /// @return requestId The market request id.
    function requestScreening(
        bytes32 registrationId_,
        bytes32 inputCommitment,
        bytes calldata inputData,
        uint64 deadline
    ) external payable returns (uint256 requestId) {
        if (msg.sender != owner) revert ScreeningConsumerNotOwner(msg.sender);
        if (registrationId_ != registrationId) revert ScreeningConsumerWrongModel(registrationId_);
        // An unknown id reads as a zero code hash and is refused before `layoutHashOf` (which
        // reverts for it) is called.
        if (
            market.getModel(registrationId_).verifierCodeHash != verifierCodeHash
                || market.layoutHashOf(registrationId_) != layoutHash
        ) {
            revert ScreeningConsumerUntrustedModel(registrationId_);
        }
        requestId = market.requestInference{value: msg.value}(
            registrationId_, inputCommitment, inputData, deadline, address(this)
        );
        isScreening[requestId] = true;
        emit ScreeningRequested(requestId, inputCommitment);
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(uint256 requestId, bytes32 registrationId_, int256[] calldata outputs, uint8) external {
        if (msg.sender != address(market)) revert ScreeningConsumerNotMarket(msg.sender);
        if (!isScreening[requestId]) revert ScreeningConsumerUnknownRequest(requestId);
        if (registrationId_ != registrationId) revert ScreeningConsumerWrongModel(registrationId_);
        if (screened[requestId]) revert ScreeningConsumerAlreadyScreened(requestId);
        if (outputs.length != 2) revert ScreeningConsumerBadOutputs(outputs.length);

        int256 margin = outputs[0] - outputs[1];
        bool refer = margin >= referralThreshold;
        screened[requestId] = true;
        if (refer) {
            referred[requestId] = true;
            emit CaseReferred(requestId, margin);
        }
        emit CaseScreened(requestId, margin, refer);
    }

    /// @notice Pulls refunds and slashed stakes owed by the market and sends this contract's whole
    ///         balance to the owner.
    function withdrawRefunds() external {
        if (msg.sender != owner) revert ScreeningConsumerNotOwner(msg.sender);
        if (market.owed(address(this)) != 0) market.withdraw();
        (bool success,) = owner.call{value: address(this).balance}("");
        if (!success) revert ScreeningConsumerTransferFailed();
    }

    /// @notice Accepts the market's payouts only.
    receive() external payable {
        if (msg.sender != address(market)) revert ScreeningConsumerNotMarket(msg.sender);
    }
}
