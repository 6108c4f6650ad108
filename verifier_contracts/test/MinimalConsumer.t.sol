// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MinimalConsumer} from "../src/examples/MinimalConsumer.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {MlpFixture} from "./fixtures/MlpFixture.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {MockVerifier} from "./utils/Mocks.sol";

/// @notice The copyable example consumer with the real MLP verifier and proof.
contract MinimalConsumerTest is MarketTest {
    address internal dapp = makeAddr("dapp");
    MinimalConsumer internal consumer;

    function setUp() public override {
        super.setUp();
        vm.deal(dapp, 100 ether);
        vm.prank(dapp);
        consumer = new MinimalConsumer(market, MLP, mlpVerifier.codehash, mlpLayoutHash());
    }

    function requestFrom(address who) internal returns (uint256 id) {
        id = requestAs(who, MLP, mlpCommitment(MlpFixture.instances()), address(consumer));
    }

    /// @dev The owner requests with the consumer as callback (what `zkinfer request --consumer`
    ///      does); the proven class is recorded and the outputs stay readable in the market.
    function test_OwnerRequest_RecordsTheProvenClass() public {
        uint256 id = requestFrom(dapp);
        fulfillMlpAs(provider, id);
        int256[] memory proven = MlpFixture.outputs();
        uint256 expected = proven[1] > proven[0] ? 1 : 0;
        assertEq(consumer.classPlusOne(id), expected + 1);
        assertEq(market.outputsOf(id)[0], proven[0]);
    }

    /// @dev A stranger naming the consumer in its own request gets no result recorded (the market
    ///      reports the failed callback; the settlement stands).
    function test_StrangersRequestIsIgnored() public {
        uint256 id = requestFrom(requester);
        vm.expectEmit(address(market));
        emit InferenceMarket.ConsumerCallbackFailed(id, address(consumer));
        fulfillMlpAs(provider, id);
        assertEq(consumer.classPlusOne(id), 0);
    }

    function test_RevertWhen_NotMarket() public {
        uint256 id = requestFrom(dapp);
        vm.expectRevert(abi.encodeWithSelector(MinimalConsumer.MinimalConsumerRejected.selector, id));
        vm.prank(dapp);
        consumer.onInferenceResult(id, MLP, MlpFixture.outputs(), 13);
    }

    function test_RevertWhen_OtherRegistration() public {
        uint256 id = requestFrom(dapp);
        vm.expectRevert(abi.encodeWithSelector(MinimalConsumer.MinimalConsumerRejected.selector, id));
        vm.prank(address(market));
        consumer.onInferenceResult(id, keccak256("other"), MlpFixture.outputs(), 13);
    }

    /// @dev Pinning a registration with another verifier (or layout) fails at deployment.
    function test_RevertWhen_UntrustedRegistration() public {
        bytes32 mock = registerMock(keccak256("accept-all"), MockVerifier.Mode.Accept);
        vm.expectRevert(abi.encodeWithSelector(MinimalConsumer.MinimalConsumerUntrustedRegistration.selector, mock));
        new MinimalConsumer(market, mock, mlpVerifier.codehash, mlpLayoutHash());
    }

    /// @dev The callback fits its gas for the CNN's ten outputs too.
    function test_CallbackFitsForTenOutputs() public {
        int256[] memory ten = new int256[](10);
        ten[7] = 5;
        uint256 id = requestFrom(dapp);
        uint256 before = gasleft();
        vm.prank(address(market));
        consumer.onInferenceResult(id, MLP, ten, 13);
        assertLe(before - gasleft(), market.CALLBACK_GAS_LIMIT(), "callback gas");
        assertEq(consumer.classPlusOne(id), 8);
    }
}
