// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceMarket} from "../src/InferenceMarket.sol";
import {MlpBatchFixture} from "./fixtures/MlpBatchFixture.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {MockConsumer, MockVerifier} from "./utils/Mocks.sol";

/// @notice `fulfillBatch` and the per-slot layout: a 4-slot model with an accept-all verifier for the
///         market's own checks, and the real batch-16 MLP proof (MlpBatchFixture) end to end.
contract InferenceMarketBatchTest is MarketTest {
    uint32 internal constant SLOTS = 4;
    uint32 internal constant IN = 3; // input instances per slot
    uint32 internal constant OUT = 2; // output instances per slot
    /// @dev `InferenceMarket.FIELD_MODULUS`: outputs above (P - 1) / 2 are negative.
    uint256 internal constant P = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice A 4-slot model whose verifier accepts everything: the market's checks stand alone.
    bytes32 internal BATCH;
    address internal acceptAll;

    function setUp() public override {
        super.setUp();
        acceptAll = address(new MockVerifier(MockVerifier.Mode.Accept));
        BATCH = registerBatch(keccak256("batch model"), acceptAll);
    }

    // ---------------------------------------------------------------- helpers

    function batchConfig(address verifier) internal pure returns (InferenceMarket.ModelConfig memory config) {
        config = mlpConfig(verifier);
        config.instanceCount = SLOTS * (IN + OUT);
        config.inputOffset = 0;
        config.inputCount = IN;
        config.outputOffset = SLOTS * IN;
        config.outputCount = OUT;
        config.batchSize = SLOTS;
    }

    function registerBatch(bytes32 modelId, address verifier) internal returns (bytes32) {
        vm.prank(modelOwner);
        return market.registerModel(modelId, batchConfig(verifier));
    }

    /// @dev One slot's inputs for an input seed (seed 0 is the padding input).
    function slotInputs(uint256 seed) internal pure returns (uint256[] memory inputs) {
        inputs = new uint256[](IN);
        for (uint256 i; i < IN; ++i) {
            inputs[i] = seed * 1000 + i;
        }
    }

    /// @dev Instances with slot s holding `seeds[s]`'s inputs and outputs (seed, -seed).
    function batchInstances(uint256[SLOTS] memory seeds) internal pure returns (uint256[] memory instances) {
        instances = new uint256[](SLOTS * (IN + OUT));
        for (uint256 s; s < SLOTS; ++s) {
            uint256[] memory inputs = slotInputs(seeds[s]);
            for (uint256 i; i < IN; ++i) {
                instances[s * IN + i] = inputs[i];
            }
            instances[SLOTS * IN + s * OUT] = seeds[s];
            instances[SLOTS * IN + s * OUT + 1] = P - seeds[s];
        }
    }

    function expectedOutputs(uint256 seed) internal pure returns (int256[] memory outputs) {
        outputs = new int256[](OUT);
        // forge-lint: disable-next-line(unsafe-typecast) small test seeds
        outputs[0] = int256(seed);
        // forge-lint: disable-next-line(unsafe-typecast) small test seeds
        outputs[1] = -int256(seed);
    }

    function requestSeed(uint256 seed, address consumer) internal returns (uint256) {
        return requestAs(requester, BATCH, keccak256(abi.encodePacked(slotInputs(seed))), consumer);
    }

    function pair(uint256 a, uint256 b) internal pure returns (uint256[] memory list) {
        list = new uint256[](2);
        list[0] = a;
        list[1] = b;
    }

    function one(uint256 a) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = a;
    }

    function fulfillBatchAs(address who, uint256[] memory ids, uint256[] memory slots, uint256[] memory instances)
        internal
    {
        vm.prank(who);
        market.fulfillBatch(ids, slots, "", instances);
    }

    // ---------------------------------------------------------------- registration

    function test_RegisterModel_BatchLayout() public view {
        InferenceMarket.ModelConfig memory config = market.getModel(BATCH).config;
        assertEq(config.batchSize, SLOTS);
        assertEq(config.inputCount, IN);
        assertEq(config.outputCount, OUT);
    }

    function test_RevertWhen_SlotRegionsDoNotFit() public {
        InferenceMarket.ModelConfig memory config;
        for (uint256 variant; variant < 4; ++variant) {
            config = batchConfig(acceptAll);
            if (variant == 0) config.batchSize = SLOTS + 1; // the inputs of 5 slots overlap the outputs
            if (variant == 1) config.outputOffset = SLOTS * IN + 1; // the last slot's outputs overflow
            if (variant == 2) config.inputCount = IN + 1; // 4 x 4 inputs run into the outputs
            if (variant == 3) config.instanceCount = SLOTS * (IN + OUT) - 1;
            vm.expectRevert(InferenceMarket.InferenceMarketBadLayout.selector);
            market.registerModel(keccak256("bad batch layout"), config);
        }
    }

    /// @dev Regions never overflow: uint32 counts times a uint32 batch size in 256-bit arithmetic.
    function testFuzz_RegisterModel_LayoutFitsOrReverts(uint32 batchSize, uint32 inputCount, uint32 outputCount)
        public
    {
        InferenceMarket.ModelConfig memory config = batchConfig(acceptAll);
        config.batchSize = batchSize;
        config.inputCount = inputCount;
        config.outputCount = outputCount;
        config.outputOffset = type(uint32).max / 2;
        config.instanceCount = type(uint32).max;
        uint256 inputEnd = uint256(batchSize) * inputCount;
        uint256 outputEnd = uint256(config.outputOffset) + uint256(batchSize) * outputCount;
        bool fits = batchSize > 0 && inputCount > 0 && outputCount > 0 && inputEnd <= config.outputOffset
            && outputEnd <= config.instanceCount;
        if (!fits) vm.expectRevert(InferenceMarket.InferenceMarketBadLayout.selector);
        market.registerModel(keccak256("fuzzed layout"), config);
    }

    // ---------------------------------------------------------------- fulfillBatch

    function test_FulfillBatch_SettlesEachRequestAtItsSlot() public {
        uint256 a = requestSeed(7, address(0));
        uint256 b = requestSeed(9, address(0));
        uint256 c = requestSeed(11, address(0));
        // Slot 1 is padding: its inputs belong to no request and are not checked.
        uint256[] memory instances = batchInstances([uint256(9), 424242, 7, 11]);
        uint256[] memory ids = new uint256[](3);
        uint256[] memory slots = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (a, b, c);
        (slots[0], slots[1], slots[2]) = (2, 0, 3);

        vm.expectEmit(address(market));
        emit InferenceMarket.InferenceFulfilled(a, BATCH, provider, REWARD, expectedOutputs(7));
        vm.expectEmit(address(market));
        emit InferenceMarket.InferenceFulfilled(b, BATCH, provider, REWARD, expectedOutputs(9));
        vm.expectEmit(address(market));
        emit InferenceMarket.InferenceFulfilled(c, BATCH, provider, REWARD, expectedOutputs(11));
        fulfillBatchAs(provider, ids, slots, instances);

        assertEq(market.outputsOf(a), expectedOutputs(7));
        assertEq(market.outputsOf(b), expectedOutputs(9));
        assertEq(market.outputsOf(c), expectedOutputs(11));
        for (uint256 i; i < 3; ++i) {
            assertTrue(statusOf(ids[i]) == InferenceMarket.Status.Fulfilled);
        }
        assertEq(market.owed(provider), 3 * REWARD);
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    function test_FulfillBatch_PaddingSlotsUnchecked() public {
        uint256 id = requestSeed(5, address(0));
        // Every other slot holds arbitrary values; only slot 3 is checked.
        fulfillBatchAs(provider, one(id), one(3), batchInstances([uint256(123), 456, 789, 5]));
        assertEq(market.outputsOf(id), expectedOutputs(5));
    }

    function test_Fulfill_SettlesAsSlotZero() public {
        uint256 id = requestSeed(5, address(0));
        uint256 other = requestSeed(6, address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInputMismatch.selector, other));
        vm.prank(provider);
        market.fulfill(other, "", batchInstances([uint256(5), 6, 0, 0]));

        vm.prank(provider);
        market.fulfill(id, "", batchInstances([uint256(5), 6, 0, 0]));
        assertEq(market.outputsOf(id), expectedOutputs(5));
    }

    function test_RevertWhen_BatchIncludesFulfilledRequest() public {
        uint256 a = requestSeed(1, address(0));
        uint256 b = requestSeed(2, address(0));
        vm.prank(provider);
        market.fulfill(a, "", batchInstances([uint256(1), 0, 0, 0]));

        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        fulfillBatchAs(provider, pair(b, a), pair(1, 0), batchInstances([uint256(1), 2, 0, 0]));
        assertTrue(statusOf(b) == InferenceMarket.Status.Open);
    }

    function test_RevertWhen_BatchHasForeignInput() public {
        uint256 a = requestSeed(1, address(0));
        uint256 b = requestSeed(2, address(0));
        // Slot 1 carries someone else's input (seed 3), not b's.
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInputMismatch.selector, b));
        fulfillBatchAs(provider, pair(a, b), pair(0, 1), batchInstances([uint256(1), 3, 0, 0]));
    }

    function test_RevertWhen_DuplicateSlot() public {
        uint256 a = requestSeed(1, address(0));
        uint256 b = requestSeed(1, address(0)); // same input: both commitments match slot 0
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketDuplicateSlot.selector, 0));
        fulfillBatchAs(provider, pair(a, b), pair(0, 0), batchInstances([uint256(1), 0, 0, 0]));
    }

    function test_RevertWhen_DuplicateRequestId() public {
        uint256 a = requestSeed(1, address(0));
        // Both slots hold a's input, so every check before the proof passes; the settlement of the
        // second copy finds the request already fulfilled.
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        fulfillBatchAs(provider, pair(a, a), pair(0, 1), batchInstances([uint256(1), 1, 0, 0]));
        assertTrue(statusOf(a) == InferenceMarket.Status.Open);
        assertEq(market.owed(provider), 0);
    }

    function test_RevertWhen_BatchMixesRegistrations() public {
        bytes32 twin = registerBatch(keccak256("twin batch model"), acceptAll);
        uint256 a = requestSeed(1, address(0));
        uint256 b = requestAs(requester, twin, keccak256(abi.encodePacked(slotInputs(2))), address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketModelMismatch.selector, b, twin));
        fulfillBatchAs(provider, pair(a, b), pair(0, 1), batchInstances([uint256(1), 2, 0, 0]));
    }

    function test_RevertWhen_BatchRequestLockedByOther() public {
        uint256 a = requestSeed(1, address(0));
        uint256 b = requestSeed(2, address(0));
        lockAs(copier, b);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestLocked.selector, b, copier));
        fulfillBatchAs(provider, pair(a, b), pair(0, 1), batchInstances([uint256(1), 2, 0, 0]));
    }

    function test_FulfillBatch_OwnLockStakeBackAndLapsedLockSlashed() public {
        uint256 a = requestSeed(1, address(0));
        uint256 b = requestSeed(2, address(0));
        lockAs(copier, b);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        lockAs(provider, a);

        vm.expectEmit(address(market));
        emit InferenceMarket.LockSlashed(b, copier, MIN_STAKE);
        fulfillBatchAs(provider, pair(a, b), pair(0, 1), batchInstances([uint256(1), 2, 0, 0]));
        assertEq(market.owed(provider), 2 * REWARD + MIN_STAKE);
        assertEq(market.owed(requester), MIN_STAKE);
        assertEq(market.getRequest(a).lockStake, 0);
        assertEq(market.getRequest(b).lockedBy, address(0));
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    function test_RevertWhen_SlotOutOfRange() public {
        uint256 a = requestSeed(1, address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketSlotOutOfRange.selector, SLOTS, SLOTS));
        fulfillBatchAs(provider, one(a), one(SLOTS), batchInstances([uint256(1), 0, 0, 0]));
    }

    function test_RevertWhen_EmptyBatch() public {
        vm.expectRevert(InferenceMarket.InferenceMarketEmptyBatch.selector);
        fulfillBatchAs(provider, new uint256[](0), new uint256[](0), batchInstances([uint256(1), 0, 0, 0]));
    }

    function test_RevertWhen_BatchLengthMismatch() public {
        uint256 a = requestSeed(1, address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketBatchLengthMismatch.selector, 1, 2));
        fulfillBatchAs(provider, one(a), pair(0, 1), batchInstances([uint256(1), 0, 0, 0]));
    }

    function test_RevertWhen_BatchInstanceCount() public {
        uint256 a = requestSeed(1, address(0));
        vm.expectRevert(
            abi.encodeWithSelector(InferenceMarket.InferenceMarketInstanceCount.selector, SLOTS * (IN + OUT), IN)
        );
        fulfillBatchAs(provider, one(a), one(0), slotInputs(1));
    }

    function test_RevertWhen_BatchDeadlinePassed() public {
        uint256 a = requestSeed(1, address(0));
        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketDeadlinePassed.selector, a));
        fulfillBatchAs(provider, one(a), one(0), batchInstances([uint256(1), 0, 0, 0]));
    }

    function test_RevertWhen_BatchProofRejected() public {
        bytes32 rejecting = registerBatch(keccak256("rejecting"), address(new MockVerifier(MockVerifier.Mode.Revert)));
        bytes32 commitment = keccak256(abi.encodePacked(slotInputs(1)));
        uint256 a = requestAs(requester, rejecting, commitment, address(0));
        uint256 b = requestAs(requester, rejecting, commitment, address(0));
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, a));
        fulfillBatchAs(provider, pair(a, b), pair(0, 1), batchInstances([uint256(1), 1, 0, 0]));
    }

    function test_FulfillBatch_WhenModelPaused() public {
        uint256 a = requestSeed(1, address(0));
        vm.prank(modelOwner);
        market.setModelPaused(BATCH, true);
        fulfillBatchAs(provider, one(a), one(0), batchInstances([uint256(1), 0, 0, 0]));
        assertTrue(statusOf(a) == InferenceMarket.Status.Fulfilled);
    }

    function test_FulfillBatch_ExactlyOnce() public {
        uint256 a = requestSeed(1, address(0));
        uint256[] memory instances = batchInstances([uint256(1), 0, 0, 0]);
        fulfillBatchAs(provider, one(a), one(0), instances);

        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        fulfillBatchAs(copier, one(a), one(0), instances);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        vm.prank(copier);
        market.fulfill(a, "", instances);
        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        market.refund(a);
        assertEq(market.owed(provider), REWARD);
        assertEq(market.owed(copier), 0);
    }

    function test_FulfillBatch_CallsEachConsumerAfterSettling() public {
        MockConsumer recorder = new MockConsumer(MockConsumer.Mode.Record);
        MockConsumer failing = new MockConsumer(MockConsumer.Mode.Revert);
        uint256 a = requestSeed(1, address(failing));
        uint256 b = requestSeed(2, address(recorder));

        vm.expectEmit(address(market));
        emit InferenceMarket.ConsumerCallbackFailed(a, address(failing));
        fulfillBatchAs(provider, pair(a, b), pair(3, 2), batchInstances([uint256(0), 0, 2, 1]));
        assertEq(recorder.calls(), 1);
        assertEq(recorder.lastRequestId(), b);
        assertEq(recorder.lastRegistrationId(), BATCH);
        assertEq(recorder.lastOutputs(), expectedOutputs(2));
        assertTrue(statusOf(a) == InferenceMarket.Status.Fulfilled);
        assertTrue(statusOf(b) == InferenceMarket.Status.Fulfilled);
    }

    /// @dev Any non-empty subset of the slots, listed in any rotation, settles exactly those
    ///      requests and moves exactly their rewards.
    function testFuzz_FulfillBatch_AnySubsetOfSlots(uint256 mask, uint256 rotation) public {
        mask = bound(mask, 1, 2 ** SLOTS - 1);
        uint256 count;
        for (uint256 s; s < SLOTS; ++s) {
            if ((mask >> s) & 1 == 1) ++count;
        }
        rotation = bound(rotation, 0, count - 1);
        uint256[SLOTS] memory seeds;
        uint256[] memory ids = new uint256[](count);
        uint256[] memory slots = new uint256[](count);
        uint256 k;
        for (uint256 s; s < SLOTS; ++s) {
            if ((mask >> s) & 1 == 0) continue;
            seeds[s] = 100 + s;
            uint256 position = (k + rotation) % count;
            ids[position] = requestSeed(seeds[s], address(0));
            slots[position] = s;
            ++k;
        }
        fulfillBatchAs(provider, ids, slots, batchInstances(seeds));
        for (uint256 i; i < count; ++i) {
            assertEq(market.outputsOf(ids[i]), expectedOutputs(seeds[slots[i]]));
        }
        assertEq(market.owed(provider), count * REWARD);
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    // ---------------------------------------------------------------- the real batch-16 proof

    function test_FulfillBatch_RealBatchProof() public {
        (bytes32 registrationId,) = registerMlpBatch();
        uint256[] memory instances = MlpBatchFixture.instances();
        uint256 slots = MlpBatchFixture.BATCH_SIZE;
        uint256[] memory ids = new uint256[](slots);
        uint256[] memory slotList = new uint256[](slots);
        for (uint256 s; s < slots; ++s) {
            bytes32 commitment = commitmentOf(
                instances, MlpBatchFixture.INPUT_OFFSET + s * MlpBatchFixture.INPUT_COUNT, MlpBatchFixture.INPUT_COUNT
            );
            ids[s] = requestAs(requester, registrationId, commitment, address(0));
            slotList[s] = s;
        }
        vm.prank(provider);
        market.fulfillBatch(ids, slotList, MlpBatchFixture.PROOF, instances);
        for (uint256 s; s < slots; ++s) {
            int256[] memory outputs = market.outputsOf(ids[s]);
            assertEq(outputs.length, MlpBatchFixture.OUTPUT_COUNT);
            for (uint256 j; j < outputs.length; ++j) {
                uint256 felt = instances[MlpBatchFixture.OUTPUT_OFFSET + s * MlpBatchFixture.OUTPUT_COUNT + j];
                // forge-lint: disable-next-line(unsafe-typecast) field elements are below 2**254
                int256 expected = felt > (P - 1) / 2 ? -int256(P - felt) : int256(felt);
                assertEq(outputs[j], expected);
            }
        }
        assertEq(market.owed(provider), slots * REWARD);
        assertSolvent();
    }

    function test_RevertWhen_RealBatchProofTampered() public {
        (bytes32 registrationId,) = registerMlpBatch();
        uint256[] memory instances = MlpBatchFixture.instances();
        uint256 id = requestAs(
            requester,
            registrationId,
            commitmentOf(instances, MlpBatchFixture.INPUT_OFFSET, MlpBatchFixture.INPUT_COUNT),
            address(0)
        );
        // A padding slot's output changed: unchecked by the market, caught by the proof.
        instances[MlpBatchFixture.OUTPUT_OFFSET + 15 * MlpBatchFixture.OUTPUT_COUNT] += 1;
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketProofRejected.selector, id));
        vm.prank(provider);
        market.fulfillBatch(one(id), one(0), MlpBatchFixture.PROOF, instances);
    }
}
