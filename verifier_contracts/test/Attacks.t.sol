// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceMarket} from "../src/InferenceMarket.sol";
import {CnnFixture} from "./fixtures/CnnFixture.sol";
import {MlpFixture} from "./fixtures/MlpFixture.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {MockConsumer, MockVerifier, ReentrantWithdrawer} from "./utils/Mocks.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice Attacks on settlement with real ezkl proofs of two models (MLP and CNN).
contract AttacksTest is MarketTest {
    address internal cnnVerifier;

    function setUp() public override {
        super.setUp();
        cnnVerifier = vm.deployCode("CnnVerifier.sol:CnnVerifier");
        vm.prank(modelOwner);
        market.registerModel(CNN_ID, cnnConfig(cnnVerifier));
    }

    function cnnCommitment(uint256[] memory instances) internal pure returns (bytes32) {
        return commitmentOf(instances, CnnFixture.INPUT_OFFSET, CnnFixture.INPUT_COUNT);
    }

    /// @dev Sanity: the CNN fixture settles its own request, with negative and positive logits.
    function test_Fulfill_Cnn() public {
        uint256 id = requestAs(requester, CNN, cnnCommitment(CnnFixture.instances()), address(0));
        vm.prank(provider);
        market.fulfill(id, CnnFixture.PROOF, CnnFixture.instances());
        assertEq(market.outputsOf(id), CnnFixture.outputs());
        assertEq(market.owed(provider), REWARD);
    }

    // ---- replay

    function test_RevertWhen_ProofReplayedForAnotherInput() public {
        uint256[] memory instances = MlpFixture.instances();
        uint256 first = requestMlp(address(0));
        fulfillMlpAs(provider, first);

        // A second request for a different input (one feature changed).
        uint256[] memory other = MlpFixture.instances();
        other[3] += 1;
        uint256 second = requestAs(requester, MLP, mlpCommitment(other), address(0));

        // The recorded proof with its own instances does not match the new commitment ...
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInputMismatch.selector, second));
        vm.prank(copier);
        market.fulfill(second, MlpFixture.PROOF, instances);

        // ... and with the new inputs substituted the proof no longer verifies.
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, second));
        vm.prank(copier);
        market.fulfill(second, MlpFixture.PROOF, other);
        assertTrue(statusOf(second) == InferenceMarket.Status.Open);
    }

    function test_RevertWhen_ProofReplayedForSameRequest() public {
        uint256 id = requestMlp(address(0));
        fulfillMlpAs(provider, id);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, id));
        fulfillMlpAs(copier, id);
        assertEq(market.owed(provider), REWARD);
        assertEq(market.owed(copier), 0);
    }

    /// @dev Settlement is keyed on the request, not the proof: two requests for the same input are
    ///      both settled by the same (valid) proof, each exactly once.
    function test_SameProofSettlesEachRequestForTheSameInputOnce() public {
        uint256 first = requestMlp(address(0));
        uint256 second = requestMlp(address(0));
        fulfillMlpAs(provider, first);
        fulfillMlpAs(provider, second);
        assertEq(market.owed(provider), 2 * REWARD);
        assertSolvent();
    }

    // ---- proofs of another model

    function test_RevertWhen_CnnProofForMlpRequest() public {
        uint256 id = requestMlp(address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInstanceCount.selector, 32, 74));
        vm.prank(provider);
        market.fulfill(id, CnnFixture.PROOF, CnnFixture.instances());
    }

    function test_RevertWhen_MlpProofForCnnRequest() public {
        uint256 id = requestAs(requester, CNN, cnnCommitment(CnnFixture.instances()), address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInstanceCount.selector, 74, 32));
        fulfillMlpAs(provider, id);
    }

    /// @dev A model registered with the MLP layout but another (real) verifier rejects the MLP proof.
    function test_RevertWhen_MlpProofForModelWithAnotherVerifier() public {
        vm.prank(modelOwner);
        bytes32 impostor = market.registerModel(keccak256("mlp layout, cnn verifier"), mlpConfig(cnnVerifier));
        uint256 id = requestAs(requester, impostor, mlpCommitment(MlpFixture.instances()), address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        fulfillMlpAs(provider, id);
    }

    // ---- instances changed after proving

    function testFuzz_RevertWhen_OutputInstanceChanged(uint256 index, uint256 delta) public {
        index = bound(index, MlpFixture.OUTPUT_OFFSET, MlpFixture.OUTPUT_OFFSET + MlpFixture.OUTPUT_COUNT - 1);
        delta = bound(delta, 1, market.FIELD_MODULUS() - 1);
        uint256 id = requestMlp(address(0));
        uint256[] memory instances = MlpFixture.instances();
        instances[index] = addmod(instances[index], delta, market.FIELD_MODULUS());
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        vm.prank(provider);
        market.fulfill(id, MlpFixture.PROOF, instances);
    }

    function testFuzz_RevertWhen_InputInstanceChangedWithMatchingCommitment(uint256 index, uint256 delta) public {
        index = bound(index, MlpFixture.INPUT_OFFSET, MlpFixture.INPUT_OFFSET + MlpFixture.INPUT_COUNT - 1);
        delta = bound(delta, 1, market.FIELD_MODULUS() - 1);
        uint256[] memory instances = MlpFixture.instances();
        instances[index] = addmod(instances[index], delta, market.FIELD_MODULUS());
        uint256 id = requestAs(requester, MLP, mlpCommitment(instances), address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        vm.prank(provider);
        market.fulfill(id, MlpFixture.PROOF, instances);
    }

    /// @dev An instance aliased by the field modulus (x + p, equal mod p) is refused by the verifier,
    ///      so a commitment cannot be satisfied by a second encoding of the same input.
    function test_RevertWhen_InputInstanceAliasedByModulus() public {
        uint256[] memory instances = MlpFixture.instances();
        instances[0] = instances[0] + market.FIELD_MODULUS();
        uint256 id = requestAs(requester, MLP, mlpCommitment(instances), address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        vm.prank(provider);
        market.fulfill(id, MlpFixture.PROOF, instances);
    }

    // ---- front-running and timing

    function test_RevertWhen_ProofCopiedWhileLocked() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        // The copier saw the provider's fulfil in the mempool and submits it first.
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestLocked.selector, id, provider));
        fulfillMlpAs(copier, id);
        fulfillMlpAs(provider, id);
        assertEq(market.owed(provider), REWARD + MIN_STAKE);
    }

    function test_RevertWhen_FulfilledAfterDeadline() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketDeadlinePassed.selector, id));
        fulfillMlpAs(provider, id);
        market.refund(id);
        assertEq(market.owed(requester), REWARD + MIN_STAKE);
    }

    /// @dev An owner who is also the requester pauses the model while a provider holds a lock,
    ///      hoping to let the lock lapse and slash the stake: the lock holder still fulfils, and is
    ///      paid the reward and its stake back.
    function test_LockHolderFulfilsAfterOwnerPaused() public {
        vm.deal(modelOwner, REWARD);
        uint256 id = requestAs(modelOwner, MLP, mlpCommitment(MlpFixture.instances()), address(0));
        lockAs(provider, id);
        vm.prank(modelOwner);
        market.setModelPaused(MLP, true);

        // No new locks on the paused model ...
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketModelPaused.selector, MLP));
        lockAs(copier, id);
        // ... but the lock holder settles, and the owner has nothing to slash.
        fulfillMlpAs(provider, id);
        assertTrue(statusOf(id) == InferenceMarket.Status.Fulfilled);
        assertEq(market.owed(provider), REWARD + MIN_STAKE);
        assertEq(market.owed(modelOwner), 0);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, id));
        market.slashLock(id);
        assertSolvent();
    }

    /// @dev A requester sets a deadline 2 s away (or an owner a 1 s lock duration) so that a lock
    ///      lapses before the locker's fulfil is mined, then refunds and takes the stake. Locks are
    ///      never cut short: the lock is refused, the provider keeps its stake, and a 1 s lock
    ///      duration cannot be registered.
    function test_RevertWhen_LockWouldBeCutShort() public {
        vm.prank(requester);
        uint256 id = market.requestInference{value: REWARD}(
            MLP, mlpCommitment(MlpFixture.instances()), "", uint64(block.timestamp + 2), address(0)
        );
        uint256 balance = provider.balance;
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketLockWindowTooShort.selector, id));
        lockAs(provider, id);
        assertEq(provider.balance, balance);

        vm.warp(block.timestamp + 3);
        market.refund(id);
        assertEq(market.owed(requester), REWARD);
        assertEq(market.owed(provider), 0);
        assertSolvent();

        InferenceMarket.ModelConfig memory config = mlpConfig(mlpVerifier);
        config.lockDuration = 1;
        vm.expectRevert(InferenceMarket.InferenceMarketBadLockTerms.selector);
        vm.prank(modelOwner);
        market.registerModel(keccak256("one-second locks"), config);
    }

    // ---- consumers cannot block settlement

    function test_ConsumerThatReverts_CannotBlockSettlement() public {
        _assertSettlesDespite(MockConsumer.Mode.Revert, true);
    }

    function test_ConsumerThatBurnsAllGas_CannotBlockSettlement() public {
        _assertSettlesDespite(MockConsumer.Mode.BurnGas, true);
    }

    function test_ConsumerReturnBomb_CannotBlockSettlement() public {
        _assertSettlesDespite(MockConsumer.Mode.ReturnBomb, false);
    }

    function _assertSettlesDespite(MockConsumer.Mode mode, bool fails) internal {
        MockConsumer consumer = new MockConsumer(mode);
        uint256 id = requestMlp(address(consumer));
        vm.recordLogs();
        fulfillMlpAs(provider, id);
        assertTrue(statusOf(id) == InferenceMarket.Status.Fulfilled);
        assertEq(market.owed(provider), REWARD);
        assertEq(market.outputsOf(id), MlpFixture.outputs());

        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool sawFailure;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == InferenceMarket.ConsumerCallbackFailed.selector) sawFailure = true;
        }
        assertEq(sawFailure, fails);
    }

    // ---- verifier pin

    function test_RevertWhen_VerifierCodeSwappedForAcceptAll() public {
        uint256 id = requestAs(requester, MLP, keccak256(abi.encodePacked(new uint256[](30))), address(0));
        vm.etch(mlpVerifier, address(new MockVerifier(MockVerifier.Mode.Accept)).code);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceMarket.InferenceMarketVerifierCodeChanged.selector, mlpVerifier)
        );
        vm.prank(copier);
        market.fulfill(id, "", new uint256[](32));
    }

    // ---- re-entrancy

    function test_RevertWhen_WithdrawReentered() public {
        ReentrantWithdrawer attacker = new ReentrantWithdrawer(market, false);
        _fundAttackerRefund(attacker);
        // The re-entered withdraw reverts, so the attacker's receive reverts and nothing is sent.
        vm.expectRevert(InferenceMarket.InferenceMarketTransferFailed.selector);
        attacker.attack();
        assertEq(market.owed(address(attacker)), REWARD);
        assertSolvent();
    }

    function test_WithdrawReentry_PaysOnce() public {
        ReentrantWithdrawer attacker = new ReentrantWithdrawer(market, true);
        _fundAttackerRefund(attacker);
        // Someone else's funds sit in the market too.
        uint256 other = requestMlp(address(0));
        fulfillMlpAs(provider, other);

        attacker.attack();
        assertEq(attacker.reentryAttempts(), 1);
        assertEq(address(attacker).balance, REWARD);
        assertEq(market.owed(address(attacker)), 0);
        assertEq(address(market).balance, REWARD);
        assertEq(market.owed(provider), REWARD);
        assertSolvent();
    }

    function _fundAttackerRefund(ReentrantWithdrawer attacker) internal {
        uint256 id = attacker.request{value: REWARD}(MLP, bytes32(0), uint64(block.timestamp + TTL));
        vm.warp(block.timestamp + TTL + 1);
        attacker.refund(id);
    }
}
