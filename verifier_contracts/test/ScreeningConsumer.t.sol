// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ScreeningConsumer} from "../src/examples/ScreeningConsumer.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {MlpFixture} from "./fixtures/MlpFixture.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {MockVerifier} from "./utils/Mocks.sol";

/// @notice A clinic whose receive function rejects ether (to test the consumer's forwarding).
contract ClinicWithoutReceive {
    function deploy(InferenceMarket market, bytes32 registrationId, bytes32 codeHash, bytes32 layoutHash)
        external
        returns (ScreeningConsumer)
    {
        return new ScreeningConsumer(market, registrationId, codeHash, layoutHash, 0);
    }

    function request(ScreeningConsumer consumer, bytes32 commitment, uint64 deadline)
        external
        payable
        returns (uint256)
    {
        return consumer.requestScreening{value: msg.value}(consumer.registrationId(), commitment, "", deadline);
    }

    function withdrawRefunds(ScreeningConsumer consumer) external {
        consumer.withdrawRefunds();
    }
}

/// @notice The example dApp end to end with the real MLP proof, plus its access rules.
contract ScreeningConsumerTest is MarketTest {
    /// @dev Refer when the malignant logit is at least 1.0 above the benign one (scale 2**13).
    int256 internal constant THRESHOLD = 8192;

    address internal clinic = makeAddr("clinic");
    ScreeningConsumer internal consumer;

    function setUp() public override {
        super.setUp();
        vm.deal(clinic, 100 ether);
        vm.prank(clinic);
        consumer = new ScreeningConsumer(market, MLP, mlpVerifier.codehash, mlpLayoutHash(), THRESHOLD);
    }

    function screen(ScreeningConsumer target) internal returns (uint256 id) {
        vm.prank(clinic);
        id = target.requestScreening{value: REWARD}(
            MLP, mlpCommitment(MlpFixture.instances()), "case 17", uint64(block.timestamp + TTL)
        );
    }

    function sampleMargin() internal pure returns (int256) {
        int256[] memory outputs = MlpFixture.outputs();
        return outputs[0] - outputs[1];
    }

    function test_RequestScreening() public {
        bytes32 commitment = mlpCommitment(MlpFixture.instances());
        vm.expectEmit(address(consumer));
        emit ScreeningConsumer.ScreeningRequested(1, commitment);
        uint256 id = screen(consumer);

        assertTrue(consumer.isScreening(id));
        assertEq(consumer.verifierCodeHash(), mlpVerifier.codehash);
        assertEq(consumer.layoutHash(), market.layoutHashOf(MLP));
        InferenceMarket.Request memory request = market.getRequest(id);
        assertEq(request.requester, address(consumer));
        assertEq(request.consumer, address(consumer));
        assertEq(request.reward, REWARD);
        assertEq(request.inputCommitment, commitment);
    }

    function test_Screening_BenignSampleNotReferred() public {
        uint256 id = screen(consumer);
        vm.expectEmit(address(consumer));
        emit ScreeningConsumer.CaseScreened(id, sampleMargin(), false);
        fulfillMlpAs(provider, id);

        assertTrue(consumer.screened(id));
        assertFalse(consumer.referred(id));
        assertTrue(sampleMargin() < -13 * 8192); // benign by about 13.3 logits
    }

    function test_Screening_ReferredWhenMarginReachesThreshold() public {
        // A (deliberately lax) threshold equal to the sample's margin refers it.
        vm.prank(clinic);
        ScreeningConsumer lax =
            new ScreeningConsumer(market, MLP, mlpVerifier.codehash, mlpLayoutHash(), sampleMargin());
        uint256 id = screen(lax);
        vm.expectEmit(address(lax));
        emit ScreeningConsumer.CaseReferred(id, sampleMargin());
        fulfillMlpAs(provider, id);
        assertTrue(lax.referred(id));
    }

    /// @dev Referral happens exactly when malignant - benign >= threshold, for any proven logits.
    function testFuzz_Screening_ReferralRule(int64 malignant, int64 benign, int64 threshold) public {
        bytes32 mock = registerMock(keccak256("mock mlp"), MockVerifier.Mode.Accept);
        address verifier = market.getModel(mock).config.verifier;
        vm.prank(clinic);
        ScreeningConsumer target = new ScreeningConsumer(market, mock, verifier.codehash, mlpLayoutHash(), threshold);

        uint256 p = market.FIELD_MODULUS();
        uint256[] memory instances = MlpFixture.instances();
        instances[30] = feltOf(malignant, p);
        instances[31] = feltOf(benign, p);
        vm.prank(clinic);
        uint256 id =
            target.requestScreening{value: REWARD}(mock, mlpCommitment(instances), "", uint64(block.timestamp + TTL));
        vm.prank(provider);
        market.fulfill(id, "", instances);

        assertTrue(target.screened(id));
        assertEq(target.referred(id), int256(malignant) - benign >= threshold);
    }

    function feltOf(int64 value, uint256 p) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast) |value| < 2**63
        return value < 0 ? p - uint256(-int256(value)) : uint256(int256(value));
    }

    function test_WithdrawRefunds() public {
        uint256 id = screen(consumer);
        vm.warp(block.timestamp + TTL + 1);
        market.refund(id);
        uint256 balance = clinic.balance;
        vm.prank(clinic);
        consumer.withdrawRefunds();
        assertEq(clinic.balance, balance + REWARD);
        assertEq(market.owed(address(consumer)), 0);
    }

    function test_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerNotOwner.selector, requester));
        vm.prank(requester);
        consumer.requestScreening{value: REWARD}(MLP, bytes32(0), "", uint64(block.timestamp + TTL));

        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerNotOwner.selector, requester));
        vm.prank(requester);
        consumer.withdrawRefunds();
    }

    function test_RevertWhen_WrongModel_Request() public {
        bytes32 other = keccak256("other model");
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerWrongModel.selector, other));
        vm.prank(clinic);
        consumer.requestScreening{value: REWARD}(other, bytes32(0), "", uint64(block.timestamp + TTL));
    }

    /// @dev Anyone may register the MLP's id, but only under a registration id of their own: an
    ///      attacker who registers it with an accept-all verifier can settle requests made against
    ///      its registration with made-up outputs, yet the honest owner still registers (no
    ///      first-come squatting), and a consumer pinning the owner's registration never touches
    ///      the attacker's. Pinning the attacker's registration is refused by the code hash pin.
    function test_RevertWhen_ModelIdSquatted() public {
        InferenceMarket fresh = new InferenceMarket();
        address attacker = makeAddr("attacker");
        address acceptAll = address(new MockVerifier(MockVerifier.Mode.Accept));
        vm.prank(attacker);
        bytes32 squatted = fresh.registerModel(MLP_ID, mlpConfig(acceptAll));
        // The honest owner comes second and still gets its own registration.
        vm.prank(modelOwner);
        bytes32 genuine = fresh.registerModel(MLP_ID, mlpConfig(mlpVerifier));
        assertEq(genuine, MLP);
        assertTrue(squatted != genuine);

        // The attacker's registration forges results: an accept-all "proof" with malignant outputs.
        uint256[] memory forged = MlpFixture.instances();
        forged[30] = 100 * 8192;
        forged[31] = 0;
        vm.prank(requester);
        uint256 id = fresh.requestInference{value: REWARD}(
            squatted, mlpCommitment(forged), "", uint64(block.timestamp + TTL), address(0)
        );
        vm.prank(attacker);
        fresh.fulfill(id, "", forged);
        assertEq(fresh.outputsOf(id)[0], 100 * 8192);

        // A consumer pinning the attacker's registration by mistake is refused by the code hash pin.
        vm.prank(clinic);
        ScreeningConsumer pinned =
            new ScreeningConsumer(fresh, squatted, mlpVerifier.codehash, mlpLayoutHash(), THRESHOLD);
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerUntrustedModel.selector, squatted));
        vm.prank(clinic);
        pinned.requestScreening{value: REWARD}(
            squatted, mlpCommitment(MlpFixture.instances()), "", uint64(block.timestamp + TTL)
        );
        assertEq(fresh.nextRequestId(), 2);
    }

    /// @dev Issue 8: a squatter registers the MLP's id with the genuine verifier AND layout (every
    ///      code hash and layout check passes) but hostile terms (1-wei stake, one-day locks), then
    ///      pauses it. The consumer pins the owner's registration id, so the squatter's pause and
    ///      terms cannot reach it: it keeps requesting and acting on proven results.
    function test_SquatterWithGenuineVerifierAndPauseCannotStallTheConsumer() public {
        InferenceMarket.ModelConfig memory hostile = mlpConfig(mlpVerifier);
        hostile.minLockStake = 1;
        hostile.lockDuration = 1 days;
        address attacker = makeAddr("attacker");
        vm.prank(attacker);
        bytes32 squatted = market.registerModel(MLP_ID, hostile);
        assertEq(market.getModel(squatted).verifierCodeHash, mlpVerifier.codehash);
        assertEq(market.layoutHashOf(squatted), mlpLayoutHash());
        vm.prank(attacker);
        market.setModelPaused(squatted, true);

        uint256 id = screen(consumer);
        assertEq(market.getRequest(id).registrationId, MLP);
        fulfillMlpAs(provider, id);
        assertTrue(consumer.screened(id));

        // The squatter's registration is not the pinned one: the consumer refuses it outright.
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerWrongModel.selector, squatted));
        vm.prank(clinic);
        consumer.requestScreening{value: REWARD}(squatted, bytes32(0), "", uint64(block.timestamp + TTL));
    }

    /// @dev A registrant registers the MLP's id with the genuine (public) verifier, so the code
    ///      hash matches, but with a layout that commits only 29 of the 30 inputs: a provider could
    ///      then choose the last input freely for the same commitment. A consumer pinning that
    ///      registration pins the layout hash too and refuses to request from it.
    function test_RevertWhen_ModelIdSquattedWithGenuineVerifierOtherLayout() public {
        InferenceMarket fresh = new InferenceMarket();
        InferenceMarket.ModelConfig memory squatted = mlpConfig(mlpVerifier);
        squatted.inputCount = MlpFixture.INPUT_COUNT - 1;
        vm.prank(makeAddr("attacker"));
        bytes32 registration = fresh.registerModel(MLP_ID, squatted);
        assertEq(fresh.getModel(registration).verifierCodeHash, mlpVerifier.codehash); // the code hash alone passes
        assertTrue(fresh.layoutHashOf(registration) != mlpLayoutHash());

        vm.prank(clinic);
        ScreeningConsumer pinned =
            new ScreeningConsumer(fresh, registration, mlpVerifier.codehash, mlpLayoutHash(), THRESHOLD);
        vm.expectRevert(
            abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerUntrustedModel.selector, registration)
        );
        vm.prank(clinic);
        pinned.requestScreening{value: REWARD}(
            registration, mlpCommitment(MlpFixture.instances()), "", uint64(block.timestamp + TTL)
        );
        assertEq(fresh.nextRequestId(), 1);
    }

    /// @dev Any change to one field of the layout or scales (the genuine verifier kept) is refused.
    function testFuzz_RevertWhen_LayoutDiffers(uint8 field, uint8 delta) public {
        field = uint8(bound(field, 0, 7));
        delta = uint8(bound(delta, 1, 3));
        InferenceMarket.ModelConfig memory config = mlpConfig(mlpVerifier);
        // Each variant keeps the layout valid: shrink a range, move the outputs into the gap, or
        // change the batch size or a scale.
        if (field == 0) config.instanceCount += delta;
        if (field == 1) (config.inputOffset, config.inputCount) = (delta, config.inputCount - delta);
        if (field == 2) config.inputCount -= delta;
        if (field == 3) {
            (config.inputCount, config.outputOffset) = (config.inputCount - delta, config.outputOffset - delta);
        }
        if (field == 4) config.outputCount = 1;
        // Two slots of 15 inputs and 1 output each still fill the 32 instances.
        if (field == 5) (config.batchSize, config.inputCount, config.outputCount) = (2, 15, 1);
        if (field == 6) config.inputScale += delta;
        if (field == 7) config.outputScale += delta;
        bytes32 other = market.registerModel(keccak256("squatted mlp"), config);
        assertTrue(market.layoutHashOf(other) != mlpLayoutHash());

        vm.prank(clinic);
        ScreeningConsumer target = new ScreeningConsumer(market, other, mlpVerifier.codehash, mlpLayoutHash(), 0);
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerUntrustedModel.selector, other));
        vm.prank(clinic);
        target.requestScreening{value: REWARD}(other, bytes32(0), "", uint64(block.timestamp + TTL));
    }

    function test_RevertWhen_UntrustedModel_Unregistered() public {
        bytes32 unregistered = keccak256("unregistered");
        vm.prank(clinic);
        ScreeningConsumer target = new ScreeningConsumer(market, unregistered, mlpVerifier.codehash, mlpLayoutHash(), 0);
        vm.expectRevert(
            abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerUntrustedModel.selector, unregistered)
        );
        vm.prank(clinic);
        target.requestScreening{value: REWARD}(unregistered, bytes32(0), "", uint64(block.timestamp + TTL));
    }

    function test_RevertWhen_NotMarket() public {
        uint256 id = screen(consumer);
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerNotMarket.selector, copier));
        vm.prank(copier);
        consumer.onInferenceResult(id, MLP, MlpFixture.outputs(), 13);
    }

    function test_RevertWhen_UnknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerUnknownRequest.selector, 5));
        vm.prank(address(market));
        consumer.onInferenceResult(5, MLP, MlpFixture.outputs(), 13);
    }

    function test_RevertWhen_WrongModel_Callback() public {
        uint256 id = screen(consumer);
        bytes32 other = keccak256("other model");
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerWrongModel.selector, other));
        vm.prank(address(market));
        consumer.onInferenceResult(id, other, MlpFixture.outputs(), 13);
    }

    function test_RevertWhen_AlreadyScreened() public {
        uint256 id = screen(consumer);
        fulfillMlpAs(provider, id);
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerAlreadyScreened.selector, id));
        vm.prank(address(market));
        consumer.onInferenceResult(id, MLP, MlpFixture.outputs(), 13);
    }

    function test_RevertWhen_BadOutputs() public {
        uint256 id = screen(consumer);
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerBadOutputs.selector, 3));
        vm.prank(address(market));
        consumer.onInferenceResult(id, MLP, new int256[](3), 13);
    }

    function test_RevertWhen_NotMarket_Receive() public {
        vm.expectRevert(abi.encodeWithSelector(ScreeningConsumer.ScreeningConsumerNotMarket.selector, requester));
        vm.prank(requester);
        (bool success,) = address(consumer).call{value: 1}("");
        // forge reports a low-level call that reverted as expected as successful.
        assertTrue(success);
    }

    function test_RevertWhen_TransferFailed() public {
        ClinicWithoutReceive owner = new ClinicWithoutReceive();
        ScreeningConsumer target = owner.deploy(market, MLP, mlpVerifier.codehash, mlpLayoutHash());
        uint256 id =
            owner.request{value: REWARD}(target, mlpCommitment(MlpFixture.instances()), uint64(block.timestamp + TTL));
        vm.warp(block.timestamp + TTL + 1);
        market.refund(id);
        vm.expectRevert(ScreeningConsumer.ScreeningConsumerTransferFailed.selector);
        owner.withdrawRefunds(target);
    }
}
