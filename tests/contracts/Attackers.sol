// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The part of InferenceMarket the attackers below use.
interface IMarket {
    function requestInference(
        bytes32 modelId,
        bytes32 inputCommitment,
        bytes calldata inputData,
        uint64 deadline,
        address consumer
    ) external payable returns (uint256);
    function refund(uint256 requestId) external;
    function withdraw() external;
    function owed(address account) external view returns (uint256);
}

/// @notice A consumer whose callback always reverts.
contract RevertingConsumer {
    error RevertingConsumerNo();

    function onInferenceResult(uint256, bytes32, int256[] calldata, uint8) external pure {
        revert RevertingConsumerNo();
    }
}

/// @notice A consumer whose callback burns every unit of gas it is given.
contract GasBurningConsumer {
    uint256 public sink;

    function onInferenceResult(uint256, bytes32, int256[] calldata, uint8) external {
        while (true) {
            sink += 1;
        }
    }
}

/// @notice A requester that tries to withdraw twice by re-entering withdraw from receive().
contract ReentrantRequester {
    IMarket public immutable market;
    uint256 public received;
    uint256 public reentered;

    constructor(IMarket market_) {
        market = market_;
    }

    function request(bytes32 modelId, bytes32 commitment, uint64 deadline)
        external
        payable
        returns (uint256)
    {
        return market.requestInference{value: msg.value}(modelId, commitment, "", deadline, address(0));
    }

    function refundAndWithdraw(uint256 requestId) external {
        market.refund(requestId);
        market.withdraw();
    }

    receive() external payable {
        received += msg.value;
        if (reentered == 0) {
            reentered = 1;
            try market.withdraw() {
                reentered = 2;
            } catch {}
        }
    }
}
