// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ScreeningConsumer} from "../src/examples/ScreeningConsumer.sol";
import {CnnFixture} from "./fixtures/CnnFixture.sol";
import {MlpFixture} from "./fixtures/MlpFixture.sol";
import {MarketTest} from "./utils/MarketTest.sol";

/// @notice One representative call per market function, for the README's gas table:
///         `scripts/forge.sh test --match-contract GasTest --gas-report --isolate`.
contract GasTest is MarketTest {
    ScreeningConsumer internal consumer;

    function setUp() public override {
        super.setUp();
        vm.prank(requester);
        consumer = new ScreeningConsumer(market, MLP, mlpVerifier.codehash, mlpLayoutHash(), 8192);
    }

    function test_Gas_RegisterModel() public {
        vm.prank(modelOwner);
        market.registerModel(keccak256("second model"), mlpConfig(mlpVerifier));
    }

    function test_Gas_RequestLockFulfillWithdraw() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        fulfillMlpAs(provider, id);
        vm.prank(provider);
        market.withdraw();
    }

    function test_Gas_FulfillWithoutLock() public {
        fulfillMlpAs(provider, requestMlp(address(0)));
    }

    function test_Gas_ScreeningConsumerFlow() public {
        vm.prank(requester);
        uint256 id = consumer.requestScreening{value: REWARD}(
            MLP, mlpCommitment(MlpFixture.instances()), "case 17", uint64(block.timestamp + TTL)
        );
        fulfillMlpAs(provider, id);
    }

    function test_Gas_RefundAfterLapsedLock() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        market.slashLock(id);
        vm.warp(block.timestamp + TTL);
        market.refund(id);
    }

    function test_Gas_FulfillCnn() public {
        address cnnVerifier = vm.deployCode("CnnVerifier.sol:CnnVerifier");
        vm.prank(modelOwner);
        market.registerModel(CNN_ID, cnnConfig(cnnVerifier));
        uint256[] memory instances = CnnFixture.instances();
        uint256 id = requestAs(
            requester, CNN, commitmentOf(instances, CnnFixture.INPUT_OFFSET, CnnFixture.INPUT_COUNT), address(0)
        );
        vm.prank(provider);
        market.fulfill(id, CnnFixture.PROOF, instances);
    }
}
