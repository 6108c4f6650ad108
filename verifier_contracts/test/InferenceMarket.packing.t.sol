// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer} from "../src/interfaces/IInferenceConsumer.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {MockVerifier} from "./utils/Mocks.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice A consumer that, inside its callback, re-enters the market every way it can and checks
///         that what it was passed equals what the market stores.
contract PackingReentrantConsumer is IInferenceConsumer {
    InferenceMarket public immutable market;
    uint256 public victim; // another open request to attack from the callback
    bytes public fulfillCall; // a fulfill of `victim` to attempt from the callback
    bool public fulfillReentered;
    bool public refundReentered;
    bool public slashReentered;
    bool public withdrawReentered;
    bool public outputsMatched;
    uint256 public calls;

    constructor(InferenceMarket market_) {
        market = market_;
    }

    function arm(uint256 victim_, bytes calldata fulfillCall_) external {
        victim = victim_;
        fulfillCall = fulfillCall_;
    }

    function onInferenceResult(uint256 requestId, bytes32, int256[] calldata outputs, uint8) external {
        calls += 1;
        int256[] memory stored = market.outputsOf(requestId);
        bool same = stored.length == outputs.length;
        for (uint256 i; same && i < outputs.length; ++i) {
            same = stored[i] == outputs[i];
        }
        outputsMatched = same;
        (bool ok,) = address(market).call(fulfillCall);
        fulfillReentered = ok;
        (ok,) = address(market).call(abi.encodeCall(InferenceMarket.refund, (requestId)));
        refundReentered = ok;
        (ok,) = address(market).call(abi.encodeCall(InferenceMarket.slashLock, (requestId)));
        slashReentered = ok;
        (ok,) = address(market).call(abi.encodeCall(InferenceMarket.withdraw, ()));
        withdrawReentered = ok;
    }
}

/// @notice Records a hash of each callback's outputs (one storage word: MockConsumer's full
///         record of 3 outputs costs more than the 200,000 gas a callback gets).
contract PackingHashingConsumer is IInferenceConsumer {
    mapping(uint256 requestId => bytes32) public outputsHash;

    function onInferenceResult(uint256 requestId, bytes32, int256[] calldata outputs, uint8) external {
        outputsHash[requestId] = keccak256(abi.encode(outputs));
    }
}

/// @notice Attacks on the packed request storage: outputs in the state word against the lock
///         deadline, int boundaries of the inline format, the registration index, uint96/uint40
///         bounds, accounting on every path, the memory rewind after the verifier call (outputs
///         handed to events and callbacks), reentrancy through consumer callbacks.
contract PackedStorageTest is MarketTest {
    uint256 internal constant P = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint32 internal constant SLOTS = 2;

    address internal acceptAll;

    function setUp() public override {
        super.setUp();
        acceptAll = address(new MockVerifier(MockVerifier.Mode.Accept));
    }

    // ---------------------------------------------------------------- helpers

    /// @dev A 2-slot model with one input and `outputs` outputs per slot, registered by `who`.
    function registerOutputs(address who, bytes32 modelId, uint32 outputs) internal returns (bytes32 id) {
        InferenceMarket.ModelConfig memory config = mlpConfig(acceptAll);
        config.instanceCount = SLOTS * (1 + outputs);
        config.inputOffset = 0;
        config.inputCount = 1;
        config.outputOffset = SLOTS;
        config.outputCount = outputs;
        config.batchSize = SLOTS;
        vm.prank(who);
        id = market.registerModel(modelId, config);
    }

    function felt(int256 value) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast) |value| <= (P - 1) / 2 in every test
        return value < 0 ? P - uint256(-value) : uint256(value);
    }

    /// @dev Instances of the 2-slot model: slot s has input s + 1 and outputs `outs[s]`.
    function instancesOf(int256[] memory out0, int256[] memory out1) internal pure returns (uint256[] memory inst) {
        uint256 n = out0.length;
        inst = new uint256[](SLOTS * (1 + n));
        inst[0] = 1;
        inst[1] = 2;
        for (uint256 i; i < n; ++i) {
            inst[SLOTS + i] = felt(out0[i]);
            inst[SLOTS + n + i] = felt(out1[i]);
        }
    }

    function requestSlot(bytes32 model, uint256 input, address consumer) internal returns (uint256) {
        return requestAs(requester, model, keccak256(abi.encodePacked(input)), consumer);
    }

    function assertOutputs(uint256 id, int256[] memory expected) internal view {
        int256[] memory got = market.outputsOf(id);
        assertEq(got.length, expected.length, "outputsOf length");
        for (uint256 i; i < expected.length; ++i) {
            assertEq(got[i], expected[i]);
        }
    }

    /// @dev An interesting signed value for an output of a model with `count` outputs: around the
    ///      inline width's bounds, int128's bounds, the field's half, or small.
    function boundaryValue(uint256 count, uint256 pick) internal pure returns (int256) {
        uint256 width = 80 / count;
        int256 imax = width == 0 ? int256(0) : int256((uint256(1) << (width - 1)) - 1);
        int256 half = int256((P - 1) / 2);
        uint256 k = pick % 14;
        if (k == 0) return imax;
        if (k == 1) return -imax - 1;
        if (k == 2) return imax + 1;
        if (k == 3) return -imax - 2;
        if (k == 4) return 0;
        if (k == 5) return -1;
        if (k == 6) return type(int128).max;
        if (k == 7) return type(int128).min;
        if (k == 8) return int256(type(int128).max) + 1;
        if (k == 9) return int256(type(int128).min) - 1;
        if (k == 10) return half;
        if (k == 11) return -half;
        if (k == 12) return int256(uint256(1) << 175); // would land in the lock-deadline bits if mis-shifted
        return int256(pick >> 8) % (imax + 1);
    }

    // ---------------------------------------------------------------- outputs: every width and bound

    /// @notice For 1..90 outputs per slot and values at every boundary (inline width, int128,
    ///         field half), the event, `outputsOf` (for both slots) and `getRequest` agree, and
    ///         `outputsPacked` says exactly whether they are stored narrower than int256.
    function testFuzz_Packing_OutputsRoundTripAtEveryBoundary(uint256 countSeed, uint256 seed) public {
        uint32 count = uint32(bound(countSeed, 1, 90));
        bytes32 model = registerOutputs(modelOwner, keccak256(abi.encode("fuzz outputs", count)), count);
        int256[] memory out0 = new int256[](count);
        int256[] memory out1 = new int256[](count);
        bool wide0;
        bool wide1;
        for (uint256 i; i < count; ++i) {
            out0[i] = boundaryValue(count, uint256(keccak256(abi.encode(seed, 0, i))));
            out1[i] = boundaryValue(count, uint256(keccak256(abi.encode(seed, 1, i))));
            wide0 = wide0 || out0[i] > type(int128).max || out0[i] < type(int128).min;
            wide1 = wide1 || out1[i] > type(int128).max || out1[i] < type(int128).min;
        }
        uint256 a = requestSlot(model, 1, address(0));
        uint256 b = requestSlot(model, 2, address(0));
        lockAs(provider, b); // a lock deadline present when outputs are written over it
        uint256[] memory ids = new uint256[](2);
        uint256[] memory slots = new uint256[](2);
        (ids[0], ids[1], slots[0], slots[1]) = (a, b, 0, 1);
        vm.recordLogs();
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "", instancesOf(out0, out1));

        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 n;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != InferenceMarket.InferenceFulfilled.selector) continue;
            (, int256[] memory emitted) = abi.decode(logs[i].data, (uint256, int256[]));
            int256[] memory expected = n == 0 ? out0 : out1;
            for (uint256 j; j < count; ++j) {
                assertEq(emitted[j], expected[j]);
            }
            ++n;
        }
        assertEq(n, 2);
        assertOutputs(a, out0);
        assertOutputs(b, out1);
        InferenceMarket.Request memory ra = market.getRequest(a);
        InferenceMarket.Request memory rb = market.getRequest(b);
        assertEq(uint8(ra.status), uint8(InferenceMarket.Status.Fulfilled));
        assertEq(uint8(rb.status), uint8(InferenceMarket.Status.Fulfilled));
        assertEq(ra.outputsPacked, !wide0);
        assertEq(rb.outputsPacked, !wide1);
        assertEq(rb.lockDeadline, 0);
        assertEq(rb.lockedBy, address(0));
        assertEq(rb.lockStake, 0);
        assertEq(ra.reward, REWARD);
        assertEq(rb.reward, REWARD);
        assertEq(ra.deadline, START + TTL);
        assertEq(ra.registrationId, model);
        assertEq(rb.registrationId, model);
        assertEq(market.owed(provider), 2 * REWARD + MIN_STAKE);
        assertSolvent();
    }

    /// @notice Exact inline bounds for 1 output (80 bits), 3 (26 bits), 80 (1 bit) and 81 (none).
    function test_Packing_InlineBoundsExact() public {
        uint32[4] memory counts = [uint32(1), 3, 80, 81];
        for (uint256 c; c < counts.length; ++c) {
            uint32 count = counts[c];
            bytes32 model = registerOutputs(modelOwner, keccak256(abi.encode("bounds", count)), count);
            uint256 width = 80 / count;
            int256 imax = width == 0 ? -1 : int256((uint256(1) << (width - 1)) - 1);
            // [fits at max, fits at min, one above, one below]
            int256[4] memory values = [imax, -imax - 1, imax + 1, -imax - 2];
            for (uint256 v; v < 4; ++v) {
                int256[] memory out0 = new int256[](count);
                int256[] memory out1 = new int256[](count);
                out0[count - 1] = values[v]; // the top field: bits next to bit 255
                out1[0] = values[v]; // the bottom field: bits next to the reward
                uint256 a = requestSlot(model, 1, address(0));
                uint256 b = requestSlot(model, 2, address(0));
                uint256[] memory ids = new uint256[](2);
                uint256[] memory slots = new uint256[](2);
                (ids[0], ids[1], slots[0], slots[1]) = (a, b, 0, 1);
                vm.prank(provider);
                market.fulfillBatch(ids, slots, "", instancesOf(out0, out1));
                assertOutputs(a, out0);
                assertOutputs(b, out1);
                assertEq(market.getRequest(a).reward, REWARD, "reward intact next to inline outputs");
                assertEq(market.getRequest(b).reward, REWARD, "reward intact next to inline outputs");
            }
        }
        assertSolvent();
    }

    // ---------------------------------------------------------------- lock bits vs outputs

    /// @notice Outputs written over the lock-deadline bits never read back as a lock: after a
    ///         locked request is fulfilled with all-ones inline bits, nothing treats it as locked
    ///         or open (slashLock, lockRequest, refund, fulfill all revert NotOpen) and no stake
    ///         is paid twice.
    function test_Packing_InlineOutputsNeverReadAsLock() public {
        bytes32 model = registerOutputs(modelOwner, "one output", 1);
        int256[] memory out0 = new int256[](1);
        int256[] memory out1 = new int256[](1);
        out0[0] = -1; // 80 one-bits where the lock deadline was
        out1[0] = type(int80).max;
        uint256 a = requestSlot(model, 1, address(0));
        uint256 b = requestSlot(model, 2, address(0));
        lockAs(provider, a);
        uint256[] memory ids = new uint256[](2);
        uint256[] memory slots = new uint256[](2);
        (ids[0], ids[1], slots[0], slots[1]) = (a, b, 0, 1);
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "", instancesOf(out0, out1));
        assertEq(market.owed(provider), 2 * REWARD + MIN_STAKE);
        assertEq(market.getRequest(a).lockDeadline, 0);

        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        market.slashLock(a);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        market.refund(a);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, a));
        lockAs(copier, a);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, b));
        vm.prank(copier);
        market.fulfill(b, "", instancesOf(out0, out1));
        assertEq(market.owed(requester), 0);
        assertSolvent();
    }

    /// @notice The largest reward, the latest deadline and the latest lock deadline together:
    ///         every field reads back exactly (no overlap between reward, index and lock bits).
    function test_Packing_MaxFieldsDoNotOverlap() public {
        vm.deal(requester, uint256(type(uint96).max) + 1 ether);
        uint64 deadline = uint64(type(uint40).max);
        vm.warp(uint256(deadline) - LOCK_DURATION);
        vm.prank(requester);
        uint256 id = market.requestInference{value: type(uint96).max}(MLP, bytes32(0), "", deadline, address(this));
        vm.deal(provider, uint256(type(uint96).max));
        vm.prank(provider);
        market.lockRequest{value: type(uint96).max}(id);
        InferenceMarket.Request memory r = market.getRequest(id);
        assertEq(r.reward, type(uint96).max);
        assertEq(r.deadline, deadline);
        assertEq(r.lockDeadline, deadline);
        assertEq(r.lockStake, type(uint96).max);
        assertEq(r.lockedBy, provider);
        assertEq(r.registrationId, MLP);
        assertEq(r.consumer, address(this));
        assertEq(uint8(r.status), uint8(InferenceMarket.Status.Open));
        assertEq(market.totalEscrowed(), 2 * uint256(type(uint96).max));

        // Past the deadline: refund pays reward and the lapsed stake to the requester.
        vm.warp(uint256(deadline) + 1);
        market.refund(id);
        assertEq(market.owed(requester), 2 * uint256(type(uint96).max));
        r = market.getRequest(id);
        assertEq(uint8(r.status), uint8(InferenceMarket.Status.Refunded));
        assertEq(r.reward, type(uint96).max);
        assertEq(r.lockDeadline, 0);
        assertEq(r.lockStake, 0);
        assertEq(r.lockedBy, address(0));
        assertFalse(r.outputsPacked);
        assertEq(market.outputsOf(id).length, 0);
        assertSolvent();
    }

    function test_Packing_AmountAndDeadlineBounds() public {
        vm.deal(requester, uint256(type(uint96).max) + 2);
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceMarket.InferenceMarketAmountTooLarge.selector, uint256(type(uint96).max) + 1
            )
        );
        market.requestInference{value: uint256(type(uint96).max) + 1}(
            MLP, bytes32(0), "", uint64(block.timestamp + TTL), address(0)
        );
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketBadDeadline.selector, uint64(1) << 40));
        market.requestInference{value: 1}(MLP, bytes32(0), "", uint64(1) << 40, address(0));
        uint256 id = requestMlp(address(0));
        vm.deal(provider, uint256(type(uint96).max) + 1);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceMarket.InferenceMarketAmountTooLarge.selector, uint256(type(uint96).max) + 1
            )
        );
        market.lockRequest{value: uint256(type(uint96).max) + 1}(id);
        assertSolvent();
    }

    // ---------------------------------------------------------------- lifecycle orders

    /// @notice lock -> lapse -> slashLock -> lock (other) -> lapse -> fulfill by a third party:
    ///         each stake goes to the requester once, the reward to the fulfiller, solvent throughout.
    function test_Packing_LockSlashRelockFulfillAccounting() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        market.slashLock(id);
        assertEq(market.owed(requester), MIN_STAKE);
        assertEq(market.getRequest(id).lockDeadline, 0);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketNotLocked.selector, id));
        market.slashLock(id);
        lockAs(copier, id);
        assertEq(market.getRequest(id).lockDeadline, block.timestamp + LOCK_DURATION);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        // lockRequest over a lapsed lock slashes it first (to the requester).
        lockAs(provider, id);
        assertEq(market.owed(requester), 2 * MIN_STAKE);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        fulfillMlpAs(copier, id); // provider's lapsed lock is slashed here
        assertEq(market.owed(requester), 3 * MIN_STAKE);
        assertEq(market.owed(copier), REWARD);
        assertEq(market.owed(provider), 0);
        assertEq(market.totalEscrowed(), 0);
        assertSolvent();
    }

    /// @notice The holder fulfilling after its own lock lapsed gets its stake back (as on main).
    function test_Packing_HolderFulfilsAfterOwnLockLapsed() public {
        uint256 id = requestMlp(address(0));
        lockAs(provider, id);
        vm.warp(block.timestamp + LOCK_DURATION + 1);
        fulfillMlpAs(provider, id);
        assertEq(market.owed(provider), REWARD + MIN_STAKE);
        assertEq(market.owed(requester), 0);
        assertSolvent();
    }

    // ---------------------------------------------------------------- registration index

    /// @notice Requests of three registrations (two registrants, same model id) each point at
    ///         their own registration; a batch mixing them reverts; unknown ids read as None.
    function test_Packing_RegistrationIndexPerRequest() public {
        bytes32 m1 = registerOutputs(modelOwner, "index", 2);
        bytes32 m2 = registerOutputs(copier, "index", 2);
        bytes32 m3 = registerOutputs(provider, "index", 2);
        uint256 r1 = requestSlot(m1, 1, address(0));
        uint256 r2 = requestSlot(m2, 2, address(0));
        uint256 r3 = requestSlot(m3, 1, address(0));
        assertEq(market.getRequest(r1).registrationId, m1);
        assertEq(market.getRequest(r2).registrationId, m2);
        assertEq(market.getRequest(r3).registrationId, m3);
        uint256[] memory ids = new uint256[](2);
        uint256[] memory slots = new uint256[](2);
        (ids[0], ids[1], slots[0], slots[1]) = (r1, r2, 0, 1);
        int256[] memory outs = new int256[](2);
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketModelMismatch.selector, r2, m2));
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "", instancesOf(outs, outs));

        // Id 0 and an id never issued: status None, no registration, nothing to settle.
        for (uint256 i; i < 2; ++i) {
            uint256 unknown = i == 0 ? 0 : 999;
            InferenceMarket.Request memory r = market.getRequest(unknown);
            assertEq(uint8(r.status), uint8(InferenceMarket.Status.None));
            assertEq(r.registrationId, bytes32(0));
            assertEq(market.outputsOf(unknown).length, 0);
            vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, unknown));
            market.fulfill(unknown, "", new uint256[](0));
            ids = new uint256[](1);
            slots = new uint256[](1);
            ids[0] = unknown;
            vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketRequestNotOpen.selector, unknown));
            market.fulfillBatch(ids, slots, "", new uint256[](0));
        }
    }

    // ---------------------------------------------------------------- memory and callbacks

    /// @notice After the verifier call's encoding is freed, each consumer of a batch still gets
    ///         exactly its own slot's outputs (wide ones: allocated over the freed encoding).
    function test_Packing_BatchCallbacksGetOwnOutputsAfterRewind() public {
        bytes32 model = registerOutputs(modelOwner, "callbacks", 3);
        PackingHashingConsumer c0 = new PackingHashingConsumer();
        PackingHashingConsumer c1 = new PackingHashingConsumer();
        int256[] memory out0 = new int256[](3);
        int256[] memory out1 = new int256[](3);
        (out0[0], out0[1], out0[2]) = (int256((P - 1) / 2), -5, type(int128).min);
        (out1[0], out1[1], out1[2]) = (7, -int256((P - 1) / 2), 1 << 25);
        uint256 a = requestSlot(model, 1, address(c0));
        uint256 b = requestSlot(model, 2, address(c1));
        uint256[] memory ids = new uint256[](2);
        uint256[] memory slots = new uint256[](2);
        (ids[0], ids[1], slots[0], slots[1]) = (b, a, 1, 0); // reversed order
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "a proof long enough to matter in memory", instancesOf(out0, out1));
        assertEq(c0.outputsHash(a), keccak256(abi.encode(out0)));
        assertEq(c1.outputsHash(b), keccak256(abi.encode(out1)));
        assertOutputs(a, out0);
        assertOutputs(b, out1);
    }

    /// @notice A consumer re-entering from its callback: fulfill and withdraw are refused by the
    ///         transient guard, refund/slashLock of the settled request revert, and the outputs
    ///         it was passed equal `outputsOf`. Settlement stands, accounting holds.
    function test_Packing_CallbackReentryRefused() public {
        bytes32 model = registerOutputs(modelOwner, "reentry", 1);
        PackingReentrantConsumer consumer = new PackingReentrantConsumer(market);
        uint256 a = requestSlot(model, 1, address(consumer));
        uint256 victim = requestSlot(model, 2, address(0));
        int256[] memory out0 = new int256[](1);
        int256[] memory out1 = new int256[](1);
        out0[0] = -12345;
        uint256[] memory inst = instancesOf(out0, out1);
        // Slot 0 of these instances is input 1, so fulfil the victim from slot... it cannot: the
        // callback tries a plain fulfill of the victim with matching instances of its own.
        uint256[] memory victimInst = new uint256[](inst.length);
        victimInst[0] = 2;
        consumer.arm(victim, abi.encodeCall(InferenceMarket.fulfill, (victim, bytes(""), victimInst)));
        vm.prank(provider);
        market.fulfill(a, "", inst);
        assertEq(consumer.calls(), 1);
        assertTrue(consumer.outputsMatched());
        assertFalse(consumer.fulfillReentered());
        assertFalse(consumer.withdrawReentered());
        assertFalse(consumer.refundReentered());
        assertFalse(consumer.slashReentered());
        assertEq(uint8(statusOf(victim)), uint8(InferenceMarket.Status.Open));
        // Outside the callback the same fulfill works: the guard was transient.
        vm.prank(provider);
        market.fulfill(victim, "", victimInst);
        assertEq(market.owed(provider), 2 * REWARD);
        assertSolvent();
    }

    /// @notice `inputCommitmentOf` hashes in scratch memory past the free pointer: a batch of
    ///         16 slots checks every slot's commitment (one wrong slot among 16 is caught) and
    ///         the bitmap allocated before the hashing is not clobbered (duplicate slot caught).
    function test_Packing_ScratchHashingPerSlot() public {
        InferenceMarket.ModelConfig memory config = mlpConfig(acceptAll);
        config.instanceCount = 16 * 4;
        config.inputOffset = 0;
        config.inputCount = 3;
        config.outputOffset = 48;
        config.outputCount = 1;
        config.batchSize = 16;
        vm.prank(modelOwner);
        bytes32 model = market.registerModel("scratch", config);
        uint256[] memory inst = new uint256[](64);
        for (uint256 i; i < 48; ++i) {
            inst[i] = 1000 + i;
        }
        uint256[] memory ids = new uint256[](16);
        uint256[] memory slots = new uint256[](16);
        for (uint256 s; s < 16; ++s) {
            uint256[] memory slice = new uint256[](3);
            (slice[0], slice[1], slice[2]) = (inst[3 * s], inst[3 * s + 1], inst[3 * s + 2]);
            ids[s] = requestAs(requester, model, keccak256(abi.encodePacked(slice)), address(0));
            slots[s] = s;
        }
        inst[3 * 9 + 2] += 1; // slot 9's last input is wrong
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketInputMismatch.selector, ids[9]));
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "", inst);
        inst[3 * 9 + 2] -= 1;
        slots[15] = 0; // duplicate slot
        vm.expectRevert(abi.encodeWithSelector(InferenceMarket.InferenceMarketDuplicateSlot.selector, 0));
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "", inst);
        slots[15] = 15;
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "", inst);
        assertEq(market.owed(provider), 16 * REWARD);
        assertSolvent();
    }
}
