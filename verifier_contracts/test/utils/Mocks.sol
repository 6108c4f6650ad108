// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IHalo2Verifier} from "../../src/interfaces/IHalo2Verifier.sol";
import {IInferenceConsumer} from "../../src/interfaces/IInferenceConsumer.sol";
import {InferenceMarket} from "../../src/InferenceMarket.sol";

/// @notice A stand-in verifier with a fixed answer, to test the market's handling of each outcome.
contract MockVerifier is IHalo2Verifier {
    enum Mode {
        Accept,
        ReturnFalse,
        ReturnEmpty,
        ReturnShort,
        ReturnTwo,
        Revert
    }

    Mode public immutable mode;

    constructor(Mode mode_) {
        mode = mode_;
    }

    function verifyProof(bytes calldata, uint256[] calldata) external view returns (bool) {
        Mode m = mode;
        if (m == Mode.Accept) return true;
        if (m == Mode.ReturnFalse) return false;
        if (m == Mode.Revert) revert("rejected");
        assembly {
            switch m
            case 2 { return(0, 0) }
            case 3 {
                mstore(0, shl(248, 1))
                return(0, 1)
            }
            default {
                mstore(0, 2)
                return(0, 0x20)
            }
        }
    }
}

/// @notice A consumer that records its callback, reverts, burns all its gas or returns a huge blob.
contract MockConsumer is IInferenceConsumer {
    enum Mode {
        Record,
        Revert,
        BurnGas,
        ReturnBomb
    }

    Mode public immutable mode;
    uint256 public calls;
    uint256 public lastRequestId;
    bytes32 public lastRegistrationId;
    uint8 public lastScale;
    uint256 public gasAtEntry;
    int256[] internal _lastOutputs;

    constructor(Mode mode_) {
        mode = mode_;
    }

    function onInferenceResult(uint256 requestId, bytes32 registrationId, int256[] calldata outputs, uint8 outputScale)
        external
    {
        uint256 gasLeft = gasleft();
        Mode m = mode;
        if (m == Mode.Revert) revert("consumer failed");
        if (m == Mode.BurnGas) {
            while (true) {}
        }
        if (m == Mode.ReturnBomb) {
            assembly {
                return(0, 100000)
            }
        }
        gasAtEntry = gasLeft;
        calls += 1;
        lastRequestId = requestId;
        lastRegistrationId = registrationId;
        lastScale = outputScale;
        _lastOutputs = outputs;
    }

    function lastOutputs() external view returns (int256[] memory) {
        return _lastOutputs;
    }
}

/// @notice Tries to withdraw twice by re-entering `withdraw` from `receive`.
contract ReentrantWithdrawer {
    InferenceMarket public immutable market;
    bool public swallowReentryFailure;
    uint256 public reentryAttempts;

    constructor(InferenceMarket market_, bool swallowReentryFailure_) {
        market = market_;
        swallowReentryFailure = swallowReentryFailure_;
    }

    function request(bytes32 registrationId, bytes32 commitment, uint64 deadline) external payable returns (uint256) {
        return market.requestInference{value: msg.value}(registrationId, commitment, "", deadline, address(0));
    }

    function refund(uint256 requestId) external {
        market.refund(requestId);
    }

    function attack() external {
        market.withdraw();
    }

    receive() external payable {
        reentryAttempts += 1;
        if (swallowReentryFailure) {
            try market.withdraw() {} catch {}
        } else {
            market.withdraw();
        }
    }
}

/// @notice Rejects every ether transfer.
contract EtherRejecter {
    function request(InferenceMarket market, bytes32 registrationId, bytes32 commitment, uint64 deadline)
        external
        payable
        returns (uint256)
    {
        return market.requestInference{value: msg.value}(registrationId, commitment, "", deadline, address(0));
    }

    function withdrawFrom(InferenceMarket market) external {
        market.withdraw();
    }
}
