// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceMarket} from "../src/InferenceMarket.sol";
import {IInferenceConsumer} from "../src/interfaces/IInferenceConsumer.sol";
import {MlpFixture} from "./fixtures/MlpFixture.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {EtherRejecter, MockConsumer, MockVerifier} from "./utils/Mocks.sol";

/// @notice Unit and fuzz tests of every InferenceMarket function, with the real MLP proof.
contract InferenceMarketTest is MarketTest {
    bytes32 internal constant MOCK = keccak256("mock model");

    /// @dev MOCK's registration id when this test contract registers it.
    function mockReg() internal view returns (bytes32) {
        return market.registrationIdOf(address(this), MOCK);
    }

    // ---------------------------------------------------------------- registerModel

    function test_RegisterModel() public view {
        InferenceMarket.Model memory model = market.getModel(MLP);
        assertEq(model.config.verifier, mlpVerifier);
        assertEq(model.verifierCodeHash, mlpVerifier.codehash);
        assertEq(model.config.vkDigest, MlpFixture.VK_SHA256);
        assertEq(model.config.settingsDigest, MlpFixture.SETTINGS_SHA256);
        assertEq(model.config.instanceCount, 32);
        assertEq(model.config.outputOffset, 30);
        assertEq(model.config.outputScale, 13);
        assertEq(model.owner, modelOwner);
        assertFalse(model.paused);
        assertEq(model.modelId, MLP_ID);
        assertEq(model.registrant, modelOwner);
        assertEq(MLP, keccak256(abi.encode(modelOwner, MLP_ID)));
    }

    function test_RegisterModel_EmitsModelRegistered() public {
        address verifier = address(new MockVerifier(MockVerifier.Mode.Accept));
        vm.expectEmit(address(market));
        emit InferenceMarket.ModelRegistered(
            mockReg(),
            MOCK,
            address(this),
            verifier,
            verifier.codehash,
            MlpFixture.VK_SHA256,
            MlpFixture.SETTINGS_SHA256
        );
        assertEq(market.registerModel(MOCK, mlpConfig(verifier)), mockReg());
    }

    function test_RevertWhen_ModelAlreadyRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketModelAlreadyRegistered.selector, MLP));
        vm.prank(modelOwner);
        market.registerModel(MLP_ID, mlpConfig(mlpVerifier));
    }

    /// @dev Issue 8, registration squatting: another account registering the MLP's id (the genuine
    ///      verifier and layout, hostile lock terms, then paused) gets a registration of its own; the
    ///      owner's registration, and the requests made against it, are untouched.
    function test_RegisterModel_NamespacedByRegistrant() public {
        InferenceMarket.ModelConfig memory hostile = mlpConfig(mlpVerifier);
        hostile.minLockStake = 1;
        hostile.lockDuration = 1 days;
        vm.prank(copier);
        bytes32 squatted = market.registerModel(MLP_ID, hostile);
        assertTrue(squatted != MLP);
        assertEq(squatted, market.registrationIdOf(copier, MLP_ID));
        vm.prank(copier);
        market.setModelPaused(squatted, true);

        assertFalse(market.getModel(MLP).paused);
        assertEq(market.getModel(MLP).config.lockDuration, LOCK_DURATION);
        assertEq(market.getModel(squatted).registrant, copier);
        uint256 id = requestAs(requester, MLP, mlpCommitment(MlpFixture.instances()), address(0));
        fulfillMlpAs(provider, id);
        assertTrue(market.getRequest(id).status == InferenceMarket.Status.Fulfilled);
    }

    function test_RevertWhen_VerifierHasNoCode() public {
        address eoa = makeAddr("not a contract");
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketNoVerifierCode.selector, eoa));
        market.registerModel(MOCK, mlpConfig(eoa));
    }

    function test_RevertWhen_LayoutInconsistent() public {
        InferenceMarket.ModelConfig memory config;
        for (uint256 variant; variant < 7; ++variant) {
            config = mlpConfig(mlpVerifier);
            if (variant == 0) config.inputCount = 0;
            if (variant == 1) config.outputCount = 0;
            if (variant == 2) config.inputOffset = 3; // 3 + 30 > 32
            if (variant == 3) config.outputOffset = 31; // 31 + 2 > 32
            if (variant == 4) config.outputOffset = 29; // overlaps the inputs
            if (variant == 5) config.batchSize = 0;
            if (variant == 6) config.instanceCount = 0;
            vm.expectRevert(InferenceMarket.InferenceMarketBadLayout.selector);
            market.registerModel(MOCK, config);
        }
    }

    function test_RevertWhen_ZeroLockStake() public {
        InferenceMarket.ModelConfig memory config = mlpConfig(mlpVerifier);
        config.minLockStake = 0;
        vm.expectRevert(InferenceMarket.InferenceMarketBadLockTerms.selector);
        market.registerModel(MOCK, config);
    }

    function test_RevertWhen_LockDurationOutOfRange() public {
        InferenceMarket.ModelConfig memory config = mlpConfig(mlpVerifier);
        config.lockDuration = 0;
        vm.expectRevert(InferenceMarket.InferenceMarketBadLockTerms.selector);
        market.registerModel(MOCK, config);

        // A 1 s lock would lapse before its holder's fulfil is mined.
        config.lockDuration = 1;
        vm.expectRevert(InferenceMarket.InferenceMarketBadLockTerms.selector);
        market.registerModel(MOCK, config);

        config.lockDuration = market.MIN_LOCK_DURATION() - 1;
        vm.expectRevert(InferenceMarket.InferenceMarketBadLockTerms.selector);
        market.registerModel(MOCK, config);

        config.lockDuration = market.MAX_LOCK_DURATION() + 1;
        vm.expectRevert(InferenceMarket.InferenceMarketBadLockTerms.selector);
        market.registerModel(MOCK, config);
    }

    function test_RegisterModel_LockTermsBounds() public {
        assertEq(market.MIN_LOCK_DURATION(), 60);
        assertEq(market.MAX_LOCK_DURATION(), 1 days);
        InferenceMarket.ModelConfig memory config = mlpConfig(mlpVerifier);
        config.minLockStake = 1;
        config.lockDuration = market.MAX_LOCK_DURATION();
        market.registerModel(MOCK, config);
        assertEq(market.getModel(mockReg()).config.lockDuration, 1 days);
        assertEq(market.getModel(mockReg()).config.minLockStake, 1);

        config.lockDuration = market.MIN_LOCK_DURATION();
        bytes32 shortest = market.registerModel(keccak256("shortest lock"), config);
        assertEq(market.getModel(shortest).config.lockDuration, 60);
    }

    /// @dev Registration succeeds exactly when the stake is positive and the duration in range.
    function testFuzz_RegisterModel_LockTerms(uint96 stake, uint32 duration) public {
        InferenceMarket.ModelConfig memory config = mlpConfig(mlpVerifier);
        config.minLockStake = stake;
        config.lockDuration = duration;
        if (stake == 0 || duration < 60 || duration > 1 days) {
            vm.expectRevert(InferenceMarket.InferenceMarketBadLockTerms.selector);
        }
        market.registerModel(MOCK, config);
    }

    /// @dev A layout is accepted exactly when both ranges are non-empty, inside and disjoint.
    function testFuzz_RegisterModel_Layout(uint32 total, uint32 inOff, uint32 inCount, uint32 outOff, uint32 outCount)
        public
    {
        total = uint32(bound(total, 0, 100));
        InferenceMarket.ModelConfig memory config = mlpConfig(mlpVerifier);
        config.instanceCount = total;
        config.inputOffset = uint32(bound(inOff, 0, 110));
        config.inputCount = uint32(bound(inCount, 0, 110));
        config.outputOffset = uint32(bound(outOff, 0, 110));
        config.outputCount = uint32(bound(outCount, 0, 110));
        uint256 inEnd = uint256(config.inputOffset) + config.inputCount;
        uint256 outEnd = uint256(config.outputOffset) + config.outputCount;
        bool valid = config.inputCount > 0 && config.outputCount > 0 && inEnd <= total && outEnd <= total
            && (inEnd <= config.outputOffset || outEnd <= config.inputOffset);
        if (!valid) vm.expectRevert(InferenceMarket.InferenceMarketBadLayout.selector);
        market.registerModel(MOCK, config);
    }

    // ---------------------------------------------------------------- setModelPaused

    function test_SetModelPaused() public {
        vm.expectEmit(address(market));
        emit InferenceMarket.ModelPaused(MLP, true);
        vm.prank(modelOwner);
        market.setModelPaused(MLP, true);
        assertTrue(market.getModel(MLP).paused);

        vm.prank(modelOwner);
        market.setModelPaused(MLP, false);
        assertFalse(market.getModel(MLP).paused);
    }

    function test_RevertWhen_NotModelOwner_Pause() public {
        vm.expectRevert(
            abi.encodeWithSelector(InferenceMarket.InferenceMarketNotModelOwner.selector, MLP, address(this))
        );
        market.setModelPaused(MLP, true);
    }

    function test_RevertWhen_UnknownModel_Pause() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketUnknownModel.selector, MOCK));
        market.setModelPaused(MOCK, true);
    }

    // ---------------------------------------------------------------- transferModelOwnership

    function test_TransferModelOwnership() public {
        address newOwner = makeAddr("newOwner");
        vm.expectEmit(address(market));
        emit InferenceMarket.ModelOwnershipTransferred(MLP, modelOwner, newOwner);
        vm.prank(modelOwner);
        market.transferModelOwnership(MLP, newOwner);
        assertEq(market.getModel(MLP).owner, newOwner);

        // The previous owner lost its rights.
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketNotModelOwner.selector, MLP, modelOwner));
        vm.prank(modelOwner);
        market.setModelPaused(MLP, true);
    }

    function test_RevertWhen_NotModelOwner_Transfer() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketNotModelOwner.selector, MLP, copier));
        vm.prank(copier);
        market.transferModelOwnership(MLP, copier);
    }

    function test_RevertWhen_NewOwnerIsZero() public {
        vm.expectRevert(InferenceMarket.InferenceMarketInvalidOwner.selector);
        vm.prank(modelOwner);
        market.transferModelOwnership(MLP, address(0));
    }

    // ---------------------------------------------------------------- requestInference

    function test_RequestInference() public {
        bytes32 commitment = mlpCommitment(MlpFixture.instances());
        uint64 deadline = uint64(block.timestamp + TTL);
        vm.expectEmit(address(market));
        emit InferenceMarket.InferenceRequested(
            1, MLP, requester, REWARD, deadline, commitment, address(0), "input.json"
        );
        uint256 id = requestMlp(address(0));

        assertEq(id, 1);
        assertEq(market.nextRequestId(), 2);
        InferenceMarket.Request memory request = market.getRequest(id);
        assertEq(request.registrationId, MLP);
        assertEq(request.requester, requester);
        assertEq(request.consumer, address(0));
        assertEq(request.deadline, deadline);
        assertTrue(request.status == InferenceMarket.Status.Open);
        assertEq(request.reward, REWARD);
        assertEq(request.inputCommitment, commitment);
        assertEq(request.lockedBy, address(0));
        assertEq(market.totalEscrowed(), REWARD);
        assertEq(address(market).balance, REWARD);
        assertEq(requestMlp(address(0)), 2);
    }

    function test_RevertWhen_UnknownModel_Request() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketUnknownModel.selector, MOCK));
        market.requestInference{value: REWARD}(MOCK, bytes32(0), "", uint64(block.timestamp + TTL), address(0));
    }

    function test_RevertWhen_ModelPaused_Request() public {
        vm.prank(modelOwner);
        market.setModelPaused(MLP, true);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketModelPaused.selector, MLP));
        requestMlp(address(0));
    }

    function test_RevertWhen_ZeroReward() public {
        vm.expectRevert(InferenceMarket.InferenceMarketZeroReward.selector);
        market.requestInference(MLP, bytes32(0), "", uint64(block.timestamp + TTL), address(0));
    }

    function test_RevertWhen_BadDeadline() public {
        uint64 deadline = uint64(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketBadDeadline.selector, deadline));
        market.requestInference{value: REWARD}(MLP, bytes32(0), "", deadline, address(0));
    }

    function test_RevertWhen_DeadlineBeyondUint40() public {
        // Deadlines are stored in 40 bits (year 36812): the largest is accepted and read back.
        uint64 last = type(uint40).max;
        vm.prank(requester);
        uint256 id = market.requestInference{value: REWARD}(MLP, bytes32(0), "", last, address(0));
        assertEq(market.getRequest(id).deadline, last);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketBadDeadline.selector, last + 1));
        vm.prank(requester);
        market.requestInference{value: REWARD}(MLP, bytes32(0), "", last + 1, address(0));
    }

    function test_RevertWhen_RewardBeyondUint96() public {
        // Rewards are stored in 96 bits (about 7.9e10 ether): the largest is accepted and read back.
        uint256 largest = type(uint96).max;
        vm.deal(requester, 2 * largest + 1);
        vm.prank(requester);
        uint256 id =
            market.requestInference{value: largest}(MLP, bytes32(0), "", uint64(block.timestamp + TTL), address(0));
        assertEq(market.getRequest(id).reward, largest);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketAmountTooLarge.selector, largest + 1));
        vm.prank(requester);
        market.requestInference{value: largest + 1}(MLP, bytes32(0), "", uint64(block.timestamp + TTL), address(0));
    }

    function testFuzz_RequestInference_Escrows(uint256 reward, uint64 ttl, uint8 count) public {
        reward = bound(reward, 1, 1_000 ether);
        ttl = uint64(bound(ttl, 1, 365 days));
        count = uint8(bound(count, 1, 8));
        vm.deal(requester, reward * count);
        for (uint256 i; i < count; ++i) {
            vm.prank(requester);
            uint256 id =
                market.requestInference{value: reward}(MLP, bytes32(i), "", uint64(block.timestamp + ttl), address(0));
            assertEq(id, i + 1);
        }
        assertEq(market.totalEscrowed(), reward * count);
        assertSolvent();
    }

    // ---------------------------------------------------------------- lockRequest

    function test_LockRequest() public {
        uint256 id = requestMlp(address(0));
        uint64 lockDeadline = uint64(block.timestamp + LOCK_DURATION);
        vm.expectEmit(address(market));
        emit InferenceMarket.RequestLocked(id, provider, MIN_STAKE, lockDeadline);
        lockAs(provider, id);

        InferenceMarket.Request memory request = market.getRequest(id);
        assertEq(request.lockedBy, provider);
        assertEq(request.lockDeadline, lockDeadline);
        assertEq(request.lockStake, MIN_STAKE);
        assertEq(market.totalEscrowed(), REWARD + MIN_STAKE);
        assertSolvent();
    }

    /// @dev The last moment a full lock fits: it ends exactly at the request's deadline.
    function test_LockRequest_LastFullWindow() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL - LOCK_DURATION);
        lockAs(provider, id);
        assertEq(market.getRequest(id).lockDeadline, market.getRequest(id).deadline);
    }

    /// @dev A lock is never cut short by the deadline: one second later it no longer fits.
    function test_RevertWhen_LockWindowTooShort() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL - LOCK_DURATION + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketLockWindowTooShort.selector, id));
        lockAs(provider, id);

        // Also when the request was made with a deadline nearer than the lock duration.
        vm.prank(requester);
        uint256 near =
            market.requestInference{value: REWARD}(MLP, bytes32(0), "", uint64(block.timestamp + 5), address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketLockWindowTooShort.selector, near));
        lockAs(provider, near);
    }

    /// @dev Through its whole `lockDuration` a lock keeps others out (fulfil, lock, slash), and its
    ///      holder settles at the last second and gets its stake back.
    function test_LockAlwaysLastsLockDuration() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL - LOCK_DURATION);
        lockAs(provider, id);
        uint256 lockedAt = block.timestamp;

        vm.warp(lockedAt + LOCK_DURATION);
        assertEq(market.getRequest(id).lockDeadline, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketLockNotLapsed.selector, id));
        market.slashLock(id);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestLocked.selector, id, provider));
        fulfillMlpAs(copier, id);

        fulfillMlpAs(provider, id);
        assertEq(market.owed(provider), REWARD + MIN_STAKE);
        assertEq(market.owed(requester), 0);
        assertSolvent();
    }

    function test_LockRequest_SlashesLapsedLock() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);

        vm.expectEmit(address(market));
        emit InferenceMarket.LockSlashed(id, provider, MIN_STAKE);
        lockAs(copier, id);

        assertEq(market.getRequest(id).lockedBy, copier);
        assertEq(market.owed(requester), MIN_STAKE);
        assertEq(market.totalEscrowed(), REWARD + MIN_STAKE);
        assertSolvent();
    }

    function test_RevertWhen_RequestLocked_Lock() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION); // the lock is active through its deadline
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestLocked.selector, id, provider));
        lockAs(copier, id);
    }

    function test_RevertWhen_StakeTooLow() public {
        uint256 id = requestMlp(address(0));
        vm.expectRevert(
            abi.encodeWithSelector(InferenceMarket.InferenceMarketStakeTooLow.selector, MIN_STAKE - 1, MIN_STAKE)
        );
        vm.prank(provider);
        market.lockRequest{value: MIN_STAKE - 1}(id);
    }

    function test_RevertWhen_StakeBeyondUint96() public {
        uint256 id = requestMlp(address(0));
        uint256 largest = type(uint96).max;
        vm.deal(provider, largest + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketAmountTooLarge.selector, largest + 1));
        vm.prank(provider);
        market.lockRequest{value: largest + 1}(id);
        vm.prank(provider);
        market.lockRequest{value: largest}(id);
        assertEq(market.getRequest(id).lockStake, largest);
        fulfillMlpAs(provider, id);
        assertEq(market.owed(provider), REWARD + largest);
        assertSolvent();
    }

    function test_RevertWhen_DeadlinePassed_Lock() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketDeadlinePassed.selector, id));
        lockAs(provider, id);
    }

    function test_RevertWhen_RequestNotOpen_Lock() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, 7));
        lockAs(provider, 7);
    }

    function test_RevertWhen_ModelPaused_Lock() public {
        uint256 id = requestMlp(address(0));
        vm.prank(modelOwner);
        market.setModelPaused(MLP, true);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketModelPaused.selector, MLP));
        lockAs(provider, id);
    }

    /// @dev A lock either lasts exactly `lockDuration` or is refused because it would not fit.
    function testFuzz_LockRequest_LastsLockDuration(uint32 lockDuration, uint64 ttl, uint64 elapsed) public {
        lockDuration = uint32(bound(lockDuration, market.MIN_LOCK_DURATION(), market.MAX_LOCK_DURATION()));
        ttl = uint64(bound(ttl, 1, 60 days));
        elapsed = uint64(bound(elapsed, 0, ttl));
        InferenceMarket.ModelConfig memory config = mlpConfig(address(new MockVerifier(MockVerifier.Mode.Accept)));
        config.lockDuration = lockDuration;
        bytes32 registration = market.registerModel(MOCK, config);
        uint64 deadline = uint64(block.timestamp + ttl);
        uint256 id = market.requestInference{value: REWARD}(registration, bytes32(0), "", deadline, address(0));

        vm.warp(block.timestamp + elapsed);
        if (block.timestamp + lockDuration > deadline) {
            vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketLockWindowTooShort.selector, id));
            lockAs(provider, id);
            return;
        }
        lockAs(provider, id);
        assertEq(market.getRequest(id).lockDeadline, block.timestamp + lockDuration);
        assertTrue(market.getRequest(id).lockDeadline <= deadline);
    }

    // ---------------------------------------------------------------- fulfill

    function test_Fulfill() public {
        uint256 id = requestMlp(address(0));
        vm.expectEmit(address(market));
        emit InferenceMarket.InferenceFulfilled(id, MLP, provider, REWARD, MlpFixture.outputs());
        fulfillMlpAs(provider, id);

        assertTrue(statusOf(id) == InferenceMarket.Status.Fulfilled);
        assertEq(market.outputsOf(id), MlpFixture.outputs());
        assertEq(market.owed(provider), REWARD);
        assertEq(market.totalEscrowed(), 0);
        assertEq(market.totalOwed(), REWARD);
        assertSolvent();
    }

    function test_Fulfill_DecodesSignedOutputs() public {
        uint256 id = requestMlp(address(0));
        fulfillMlpAs(provider, id);
        int256[] memory outputs = market.outputsOf(id);
        // The sample is benign: malignant logit about -6.78, benign about +6.55 (scale 2**13).
        assertTrue(outputs[0] < -6 * 8192 && outputs[0] > -7 * 8192);
        assertTrue(outputs[1] > 6 * 8192 && outputs[1] < 7 * 8192);
    }

    function test_Fulfill_ByLocker_ReturnsStake() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        fulfillMlpAs(provider, id);
        assertEq(market.owed(provider), REWARD + MIN_STAKE);
        assertEq(market.owed(requester), 0);
        assertEq(market.getRequest(id).lockedBy, address(0));
        assertEq(market.getRequest(id).lockStake, 0);
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    function test_Fulfill_LockerAfterOwnLockLapsed_GetsStakeBack() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        fulfillMlpAs(provider, id);
        assertEq(market.owed(provider), REWARD + MIN_STAKE);
        assertSolvent();
    }

    function test_Fulfill_AfterLapsedLock_SlashesToRequester() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        vm.expectEmit(address(market));
        emit InferenceMarket.LockSlashed(id, provider, MIN_STAKE);
        fulfillMlpAs(copier, id);
        assertEq(market.owed(copier), REWARD);
        assertEq(market.owed(requester), MIN_STAKE);
        assertEq(market.owed(provider), 0);
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    function test_Fulfill_AtDeadline() public {
        uint256 id = requestMlp(address(0));
        vm.warp(market.getRequest(id).deadline);
        fulfillMlpAs(provider, id);
        assertTrue(statusOf(id) == InferenceMarket.Status.Fulfilled);
    }

    function test_RevertWhen_RequestNotOpen_Fulfill() public {
        uint256 id = requestMlp(address(0));
        fulfillMlpAs(provider, id);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, id));
        fulfillMlpAs(provider, id);

        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, 99));
        fulfillMlpAs(provider, 99);
    }

    /// @dev Pausing stops new requests and locks only: a request already open still settles.
    function test_Fulfill_WhenModelPaused() public {
        uint256 id = requestMlp(address(0));
        vm.prank(modelOwner);
        market.setModelPaused(MLP, true);
        fulfillMlpAs(provider, id);
        assertTrue(statusOf(id) == InferenceMarket.Status.Fulfilled);
        assertEq(market.owed(provider), REWARD);
        assertSolvent();
    }

    function test_RevertWhen_DeadlinePassed_Fulfill() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketDeadlinePassed.selector, id));
        fulfillMlpAs(provider, id);
    }

    function test_RevertWhen_RequestLocked_Fulfill() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestLocked.selector, id, provider));
        fulfillMlpAs(copier, id);
    }

    function test_RevertWhen_InstanceCount() public {
        uint256 id = requestMlp(address(0));
        uint256[] memory instances = new uint256[](31);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInstanceCount.selector, 32, 31));
        market.fulfill(id, MlpFixture.PROOF, instances);
    }

    function test_RevertWhen_InputMismatch() public {
        uint256 id = requestAs(requester, MLP, keccak256("other input"), address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInputMismatch.selector, id));
        fulfillMlpAs(provider, id);
    }

    function test_RevertWhen_VerifierCodeChanged() public {
        uint256 id = requestMlp(address(0));
        vm.etch(mlpVerifier, address(new MockVerifier(MockVerifier.Mode.Accept)).code);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceMarket.InferenceMarketVerifierCodeChanged.selector, mlpVerifier)
        );
        fulfillMlpAs(provider, id);
    }

    function test_RevertWhen_ProofRejected() public {
        uint256 id = requestMlp(address(0));
        bytes memory proof = MlpFixture.PROOF;
        proof[100] ^= 0x01;
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        vm.prank(provider);
        market.fulfill(id, proof, MlpFixture.instances());
    }

    function test_RevertWhen_ProofRejected_EmptyProof() public {
        uint256 id = requestMlp(address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        market.fulfill(id, "", MlpFixture.instances());
    }

    /// @dev Fail closed on every non-`true` answer of a verifier.
    function test_RevertWhen_ProofRejected_ByVerifierAnswer() public {
        for (uint256 m = uint256(MockVerifier.Mode.ReturnFalse); m <= uint256(MockVerifier.Mode.Revert); ++m) {
            bytes32 modelId = keccak256(abi.encode("mock", m));
            bytes32 registration = registerMock(modelId, MockVerifier.Mode(m));
            uint256 id = requestAs(requester, registration, mlpCommitment(MlpFixture.instances()), address(0));
            vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
            fulfillMlpAs(provider, id);
        }
    }

    function test_RevertWhen_ProofRejected_OutOfGas() public {
        uint256 id = requestMlp(address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        vm.prank(provider);
        market.fulfill{gas: 300_000}(id, MlpFixture.PROOF, MlpFixture.instances());
        assertTrue(statusOf(id) == InferenceMarket.Status.Open);
    }

    function test_Fulfill_CallsConsumer() public {
        MockConsumer consumer = new MockConsumer(MockConsumer.Mode.Record);
        uint256 id = requestMlp(address(consumer));
        fulfillMlpAs(provider, id);

        assertEq(consumer.calls(), 1);
        assertEq(consumer.lastRequestId(), id);
        assertEq(consumer.lastRegistrationId(), MLP);
        assertEq(consumer.lastScale(), MlpFixture.OUTPUT_SCALE);
        assertEq(consumer.lastOutputs(), MlpFixture.outputs());
        assertGe(consumer.gasAtEntry(), market.CALLBACK_GAS_LIMIT() - 5_000, "callback starved");
        assertLe(consumer.gasAtEntry(), market.CALLBACK_GAS_LIMIT(), "callback over its limit");
    }

    function test_Fulfill_ConsumerWithoutCode() public {
        uint256 id = requestMlp(makeAddr("eoa consumer"));
        fulfillMlpAs(provider, id);
        assertTrue(statusOf(id) == InferenceMarket.Status.Fulfilled);
    }

    function test_Fulfill_ConsumerReverts_EmitsConsumerCallbackFailed() public {
        MockConsumer consumer = new MockConsumer(MockConsumer.Mode.Revert);
        uint256 id = requestMlp(address(consumer));
        vm.expectEmit(address(market));
        emit InferenceMarket.ConsumerCallbackFailed(id, address(consumer));
        fulfillMlpAs(provider, id);
        assertTrue(statusOf(id) == InferenceMarket.Status.Fulfilled);
        assertEq(market.owed(provider), REWARD);
    }

    function test_RevertWhen_InsufficientGas() public {
        MockConsumer consumer = new MockConsumer(MockConsumer.Mode.BurnGas);
        uint256 id = requestMlp(address(consumer));
        uint256 snapshot = vm.snapshotState();
        vm.prank(provider);
        uint256 before = gasleft();
        market.fulfill(id, MlpFixture.PROOF, MlpFixture.instances());
        uint256 used = before - gasleft();
        vm.revertToState(snapshot);

        // Enough to verify and settle, not enough to leave the callback its full allowance.
        vm.expectRevert(InferenceMarket.InferenceMarketInsufficientGas.selector);
        vm.prank(provider);
        market.fulfill{gas: used - 50_000}(id, MlpFixture.PROOF, MlpFixture.instances());
        assertTrue(statusOf(id) == InferenceMarket.Status.Open);
    }

    /// @dev Whatever gas a provider sends, either nothing settles or the consumer gets its full
    ///      CALLBACK_GAS_LIMIT.
    function testFuzz_Fulfill_CallbackNeverStarved(uint256 gasLimit) public {
        gasLimit = bound(gasLimit, 500_000, 1_200_000);
        MockConsumer consumer = new MockConsumer(MockConsumer.Mode.Record);
        uint256 id = requestMlp(address(consumer));
        vm.prank(provider);
        try market.fulfill{gas: gasLimit}(id, MlpFixture.PROOF, MlpFixture.instances()) {
            assertEq(consumer.calls(), 1);
            assertGe(consumer.gasAtEntry(), market.CALLBACK_GAS_LIMIT() - 5_000, "callback starved");
        } catch {
            assertTrue(statusOf(id) == InferenceMarket.Status.Open);
            assertEq(consumer.calls(), 0);
        }
    }

    /// @dev The upper half of the field decodes to negative numbers, exactly.
    function testFuzz_Fulfill_SignedOutputDecoding(uint256 a, uint256 b) public {
        uint256 p = market.FIELD_MODULUS();
        a = bound(a, 0, p - 1);
        b = bound(b, 0, p - 1);
        bytes32 registration = registerMock(MOCK, MockVerifier.Mode.Accept);
        uint256[] memory instances = MlpFixture.instances();
        instances[30] = a;
        instances[31] = b;
        uint256 id = requestAs(requester, registration, mlpCommitment(instances), address(0));
        vm.prank(provider);
        market.fulfill(id, "", instances);

        int256[] memory outputs = market.outputsOf(id);
        assertEq(outputs[0], signedOf(a, p));
        assertEq(outputs[1], signedOf(b, p));
        assertEq(feltOf(outputs[0], p), a);
        assertEq(feltOf(outputs[1], p), b);
    }

    function signedOf(uint256 felt, uint256 p) internal pure returns (int256) {
        // forge-lint: disable-next-line(unsafe-typecast) felt < p < 2**254
        return felt > p / 2 ? -int256(p - felt) : int256(felt);
    }

    function feltOf(int256 value, uint256 p) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast) |value| < p / 2
        return value < 0 ? p - uint256(-value) : uint256(value);
    }

    // ---------------------------------------------------------------- refund

    function test_Refund() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL + 1);
        vm.expectEmit(address(market));
        emit InferenceMarket.RequestRefunded(id, requester, REWARD);
        vm.prank(copier); // anyone may trigger it; the requester is credited
        market.refund(id);

        assertTrue(statusOf(id) == InferenceMarket.Status.Refunded);
        assertEq(market.owed(requester), REWARD);
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    function test_Refund_IncludesLapsedStake() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + TTL + 1);
        vm.expectEmit(address(market));
        emit InferenceMarket.LockSlashed(id, provider, MIN_STAKE);
        market.refund(id);
        assertEq(market.owed(requester), REWARD + MIN_STAKE);
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    function test_Refund_WhenModelPaused() public {
        uint256 id = requestMlp(address(0));
        vm.prank(modelOwner);
        market.setModelPaused(MLP, true);
        vm.warp(block.timestamp + TTL + 1);
        market.refund(id);
        assertEq(market.owed(requester), REWARD);
    }

    /// @dev A request packs its status, deadline, registration and lock deadline in one word, and
    ///      reuses the lock's bits for its outputs once fulfilled: `getRequest` still reads every
    ///      field back, with the lock cleared, after a fulfil and after a refund.
    function test_GetRequest_AfterSettlement() public {
        uint64 deadline = uint64(block.timestamp + TTL);
        uint256 fulfilled = requestMlp(address(0));
        lockAs(provider, fulfilled);
        uint256 refunded = requestMlp(address(this));
        lockAs(copier, refunded);
        fulfillMlpAs(provider, fulfilled);
        vm.warp(deadline + 1);
        market.refund(refunded);

        InferenceMarket.Request memory request = market.getRequest(fulfilled);
        assertEq(request.registrationId, MLP);
        assertEq(request.requester, requester);
        assertEq(request.consumer, address(0));
        assertEq(request.deadline, deadline);
        assertTrue(request.status == InferenceMarket.Status.Fulfilled);
        assertTrue(request.outputsPacked);
        assertEq(request.reward, REWARD);
        assertEq(request.inputCommitment, mlpCommitment(MlpFixture.instances()));
        assertEq(request.lockedBy, address(0));
        assertEq(request.lockDeadline, 0);
        assertEq(request.lockStake, 0);

        request = market.getRequest(refunded);
        assertEq(request.registrationId, MLP);
        assertEq(request.consumer, address(this));
        assertEq(request.deadline, deadline);
        assertTrue(request.status == InferenceMarket.Status.Refunded);
        assertFalse(request.outputsPacked);
        assertEq(request.reward, REWARD);
        assertEq(request.lockedBy, address(0));
        assertEq(request.lockDeadline, 0);
        assertEq(request.lockStake, 0);
        assertEq(market.outputsOf(refunded).length, 0);
        assertEq(market.owed(requester), REWARD + MIN_STAKE);
        assertSolvent();
    }

    function test_RevertWhen_DeadlineNotReached() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketDeadlineNotReached.selector, id));
        market.refund(id);
    }

    function test_RevertWhen_RequestNotOpen_Refund() public {
        uint256 id = requestMlp(address(0));
        fulfillMlpAs(provider, id);
        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, id));
        market.refund(id);
    }

    function test_RevertWhen_RefundedTwice() public {
        uint256 id = requestMlp(address(0));
        vm.warp(block.timestamp + TTL + 1);
        market.refund(id);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, id));
        market.refund(id);
    }

    // ---------------------------------------------------------------- slashLock

    function test_SlashLock() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        vm.expectEmit(address(market));
        emit InferenceMarket.LockSlashed(id, provider, MIN_STAKE);
        market.slashLock(id);

        InferenceMarket.Request memory request = market.getRequest(id);
        assertEq(request.lockedBy, address(0));
        assertEq(request.lockStake, 0);
        assertEq(market.owed(requester), MIN_STAKE);
        assertEq(market.totalEscrowed(), REWARD);
        assertSolvent();
        // Open to anyone again.
        fulfillMlpAs(copier, id);
        assertEq(market.owed(copier), REWARD);
    }

    function test_RevertWhen_NotLocked() public {
        uint256 id = requestMlp(address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketNotLocked.selector, id));
        market.slashLock(id);
    }

    function test_RevertWhen_LockNotLapsed() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketLockNotLapsed.selector, id));
        market.slashLock(id);
    }

    function test_RevertWhen_RequestNotOpen_Slash() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        fulfillMlpAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, id));
        market.slashLock(id);
    }

    // ---------------------------------------------------------------- withdraw

    function test_Withdraw() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        fulfillMlpAs(provider, id);
        uint256 balance = provider.balance;

        vm.expectEmit(address(market));
        emit InferenceMarket.Withdrawn(provider, REWARD + MIN_STAKE);
        vm.prank(provider);
        market.withdraw();

        assertEq(provider.balance, balance + REWARD + MIN_STAKE);
        assertEq(market.owed(provider), 0);
        assertEq(market.totalOwed(), 0);
        assertEq(address(market).balance, 0);
        assertSolvent();
    }

    function test_RevertWhen_NothingOwed() public {
        vm.expectRevert(InferenceMarket.InferenceMarketNothingOwed.selector);
        vm.prank(provider);
        market.withdraw();
    }

    function test_RevertWhen_TransferFailed() public {
        EtherRejecter rejecter = new EtherRejecter();
        uint256 id = rejecter.request{value: REWARD}(market, MLP, bytes32(0), uint64(block.timestamp + TTL));
        vm.warp(block.timestamp + TTL + 1);
        market.refund(id);
        vm.expectRevert(InferenceMarket.InferenceMarketTransferFailed.selector);
        rejecter.withdrawFrom(market);
        assertEq(market.owed(address(rejecter)), REWARD);
    }

    // ---------------------------------------------------------------- views

    function test_InputCommitmentOf() public view {
        uint256[] memory instances = MlpFixture.instances();
        uint256[] memory inputs = new uint256[](30);
        for (uint256 i; i < 30; ++i) {
            inputs[i] = instances[i];
        }
        assertEq(market.inputCommitmentOf(inputs), keccak256(abi.encodePacked(inputs)));
        assertEq(market.inputCommitmentOf(inputs), mlpCommitment(instances));
    }

    /// @dev The documented encoding, spelt out with the `ModelConfig` types: six uint32, two uint8.
    function test_LayoutHashOf() public view {
        bytes32 expected = keccak256(
            abi.encode(
                uint32(32), // instanceCount
                uint32(0), // inputOffset
                uint32(30), // inputCount
                uint32(30), // outputOffset
                uint32(2), // outputCount
                uint32(1), // batchSize
                uint8(13), // inputScale
                uint8(13) // outputScale
            )
        );
        assertEq(market.layoutHashOf(MLP), expected);
        assertEq(market.layoutHashOf(MLP), mlpLayoutHash());
    }

    /// @dev Only the layout and scales count: another verifier, digests or lock terms, same hash.
    function test_LayoutHashOf_IgnoresVerifierAndLockTerms() public {
        InferenceMarket.ModelConfig memory config = mlpConfig(address(new MockVerifier(MockVerifier.Mode.Accept)));
        config.vkDigest = bytes32(0);
        config.minLockStake = 1;
        config.lockDuration = 1 days;
        market.registerModel(MOCK, config);
        assertEq(market.layoutHashOf(mockReg()), market.layoutHashOf(MLP));
    }

    function test_RevertWhen_UnknownModel_LayoutHashOf() public {
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketUnknownModel.selector, MOCK));
        market.layoutHashOf(MOCK);
    }

    function test_ViewsOfUnknownIds() public view {
        assertEq(market.getModel(MOCK).config.verifier, address(0));
        assertTrue(market.getRequest(42).status == InferenceMarket.Status.None);
        assertEq(market.outputsOf(42).length, 0);
        assertEq(market.owed(copier), 0);
        assertEq(market.nextRequestId(), 1);
    }

    function test_Constants() public view {
        assertEq(market.FIELD_MODULUS(), 21888242871839275222246405745257275088548364400416034343698204186575808495617);
        assertEq(market.CALLBACK_GAS_LIMIT(), 200_000);
        // The callback interface the market calls.
        assertEq(
            bytes32(IInferenceConsumer.onInferenceResult.selector),
            bytes32(bytes4(keccak256("onInferenceResult(uint256,bytes32,int256[],uint8)")))
        );
    }
}
