// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceMarket} from "../src/InferenceMarket.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {MockVerifier} from "./utils/Mocks.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice How settled outputs are stored: in the request's own state word (80 bits: 26 per
///         output here) when every output of a request fits that width, else two int128 per
///         storage slot when every output fits in int128, one int256 per slot otherwise;
///         `outputsOf` returns the same signed values as the `InferenceFulfilled` event either way.
///         A 2-slot model with 3 outputs per slot (an odd count: the last word is half used) and an
///         accept-all verifier.
contract InferenceMarketOutputsTest is MarketTest {
    uint32 internal constant SLOTS = 2;
    uint32 internal constant OUT = 3; // output instances per slot; one input instance per slot
    uint256 internal constant P = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    int256 internal constant MAX = type(int128).max;
    int256 internal constant MIN = type(int128).min;
    // 80 / OUT = 26 bits per output in the request's state word.
    int256 internal constant INLINE_MAX = 2 ** 25 - 1;
    int256 internal constant INLINE_MIN = -(2 ** 25);

    bytes32 internal model;

    function setUp() public override {
        super.setUp();
        InferenceMarket.ModelConfig memory config = mlpConfig(address(new MockVerifier(MockVerifier.Mode.Accept)));
        config.instanceCount = SLOTS * (1 + OUT);
        config.inputOffset = 0;
        config.inputCount = 1;
        config.outputOffset = SLOTS;
        config.outputCount = OUT;
        config.batchSize = SLOTS;
        vm.prank(modelOwner);
        model = market.registerModel(keccak256("outputs model"), config);
    }

    /// @dev The field element that encodes `value` (negative numbers in the upper half of the field).
    function felt(int256 value) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast) |value| < P / 2 in every test
        return value < 0 ? P - uint256(-value) : uint256(value);
    }

    function signedOf(uint256 element) internal pure returns (int256) {
        // forge-lint: disable-next-line(unsafe-typecast) element < P < 2**254
        return element > (P - 1) / 2 ? -int256(P - element) : int256(element);
    }

    /// @dev Requests for both slots (input instance s + 1) and the instances carrying `outputs[s]`.
    function settleBoth(uint256[OUT][SLOTS] memory outputs) internal returns (uint256[] memory ids) {
        uint256[] memory instances = new uint256[](SLOTS * (1 + OUT));
        ids = new uint256[](SLOTS);
        uint256[] memory slots = new uint256[](SLOTS);
        for (uint256 s; s < SLOTS; ++s) {
            instances[s] = s + 1;
            for (uint256 i; i < OUT; ++i) {
                instances[SLOTS + s * OUT + i] = outputs[s][i];
            }
            ids[s] = requestAs(requester, model, keccak256(abi.encodePacked(s + 1)), address(0));
            slots[s] = s;
        }
        vm.recordLogs();
        vm.record(); // storage accesses of the settlement alone (`distinctWrites`)
        vm.prank(provider);
        market.fulfillBatch(ids, slots, "", instances);
    }

    /// @dev The outputs each `InferenceFulfilled` event carried, in emission order.
    function emittedOutputs() internal returns (int256[][] memory outputs) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        outputs = new int256[][](SLOTS);
        uint256 n;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != InferenceMarket.InferenceFulfilled.selector) continue;
            (, outputs[n++]) = abi.decode(logs[i].data, (uint256, int256[]));
        }
        assertEq(n, SLOTS);
    }

    function triple(int256 a, int256 b, int256 c) internal pure returns (uint256[OUT] memory t) {
        t = [felt(a), felt(b), felt(c)];
    }

    function expected(uint256[OUT] memory t) internal pure returns (int256[] memory out) {
        out = new int256[](OUT);
        for (uint256 i; i < OUT; ++i) {
            out[i] = signedOf(t[i]);
        }
    }

    function packedFlag(uint256 id) internal view returns (bool) {
        return market.getRequest(id).outputsPacked;
    }

    function test_Outputs_Int128BoundsArePacked() public {
        uint256[OUT][SLOTS] memory outputs = [triple(MAX, MIN, -1), triple(MIN, 0, MAX)];
        uint256[] memory ids = settleBoth(outputs);
        int256[][] memory emitted = emittedOutputs();
        for (uint256 s; s < SLOTS; ++s) {
            assertTrue(packedFlag(ids[s]));
            assertEq(market.outputsOf(ids[s]), expected(outputs[s]));
            assertEq(market.outputsOf(ids[s]), emitted[s]);
        }
    }

    function test_Outputs_OneBeyondInt128IsStoredWhole() public {
        // One output just past int128 in either direction makes its whole request unpacked.
        uint256[OUT][SLOTS] memory outputs = [triple(MAX + 1, 1, -1), triple(0, -2, MIN - 1)];
        uint256[] memory ids = settleBoth(outputs);
        int256[][] memory emitted = emittedOutputs();
        for (uint256 s; s < SLOTS; ++s) {
            assertFalse(packedFlag(ids[s]));
            assertEq(market.outputsOf(ids[s]), expected(outputs[s]));
            assertEq(market.outputsOf(ids[s]), emitted[s]);
        }
        assertEq(market.outputsOf(ids[0])[0], MAX + 1);
        assertEq(market.outputsOf(ids[1])[2], MIN - 1);
    }

    function test_Outputs_MixedBatchAndFieldExtremes() public {
        // Slot 0: negative field elements near P (small negatives: packed); slot 1: the largest
        // positive and negative field values, far beyond int128 (whole words).
        uint256[OUT][SLOTS] memory outputs = [[P - 1, P - 2 ** 127, 2 ** 127 - 1], [(P - 1) / 2, (P + 1) / 2, 0]];
        uint256[] memory ids = settleBoth(outputs);
        int256[][] memory emitted = emittedOutputs();
        assertTrue(packedFlag(ids[0]));
        assertFalse(packedFlag(ids[1]));
        for (uint256 s; s < SLOTS; ++s) {
            assertEq(market.outputsOf(ids[s]), expected(outputs[s]));
            assertEq(market.outputsOf(ids[s]), emitted[s]);
        }
        assertEq(market.outputsOf(ids[0])[1], MIN);
        assertEq(market.outputsOf(ids[1])[1], -int256((P - 1) / 2));
    }

    function test_Outputs_InlineBoundsAndOneBeyond() public {
        // Slot 0: the 26-bit bounds (inline); slot 1: one just past them in either direction (pairs).
        uint256[OUT][SLOTS] memory outputs =
            [triple(INLINE_MAX, INLINE_MIN, -1), triple(INLINE_MAX + 1, 0, INLINE_MIN - 1)];
        uint256[] memory ids = settleBoth(outputs);
        int256[][] memory emitted = emittedOutputs();
        for (uint256 s; s < SLOTS; ++s) {
            assertTrue(packedFlag(ids[s]));
            assertEq(market.outputsOf(ids[s]), expected(outputs[s]));
            assertEq(market.outputsOf(ids[s]), emitted[s]);
        }
        assertEq(market.outputsOf(ids[0])[1], INLINE_MIN);
        assertEq(market.outputsOf(ids[1])[2], INLINE_MIN - 1);
    }

    /// @dev Outputs that fit in the state word cost no storage write of their own: settling two
    ///      such requests writes their two state words, the caller's credit and the two totals.
    function test_Outputs_InlineWritesNoOutputSlot() public {
        settleBoth([triple(INLINE_MAX, INLINE_MIN, 0), triple(-1, 1, 0)]);
        assertEq(distinctWrites(), SLOTS + 3);
        // Pairs: 3 outputs need 2 more words per request.
        settleBoth([triple(INLINE_MAX + 1, 1, 1), triple(1, 1, INLINE_MIN - 1)]);
        assertEq(distinctWrites(), SLOTS + 3 + 2 * SLOTS);
    }

    function distinctWrites() internal returns (uint256 n) {
        (, bytes32[] memory writes) = vm.accesses(address(market));
        for (uint256 i; i < writes.length; ++i) {
            bool seen;
            for (uint256 j; j < i; ++j) {
                seen = seen || writes[j] == writes[i];
            }
            if (!seen) ++n;
        }
    }

    function test_Outputs_ZerosReadBackAsZeros() public {
        uint256[OUT][SLOTS] memory outputs = [triple(0, 0, 0), triple(0, 0, 7)];
        uint256[] memory ids = settleBoth(outputs);
        assertEq(market.outputsOf(ids[0]), expected(outputs[0]));
        assertEq(market.outputsOf(ids[1]), expected(outputs[1]));
    }

    function test_Outputs_FulfillPacksToo() public {
        uint256[] memory instances = new uint256[](SLOTS * (1 + OUT));
        instances[0] = 1;
        (instances[SLOTS], instances[SLOTS + 1], instances[SLOTS + 2]) = (felt(MIN), felt(MAX), P - 5);
        uint256 id = requestAs(requester, model, keccak256(abi.encodePacked(uint256(1))), address(0));
        vm.prank(provider);
        market.fulfill(id, "", instances);
        assertTrue(packedFlag(id));
        assertEq(market.outputsOf(id), expected([instances[SLOTS], instances[SLOTS + 1], instances[SLOTS + 2]]));
    }

    function test_Outputs_EmptyUntilFulfilled() public {
        uint256 id = requestAs(requester, model, keccak256(abi.encodePacked(uint256(1))), address(0));
        assertEq(market.outputsOf(id).length, 0);
        assertFalse(packedFlag(id));
    }

    /// forge-config: default.fuzz.runs = 512
    function testFuzz_Outputs_OutputsOfEqualsEvent(
        uint256[OUT][SLOTS] memory outputs,
        uint8 nearBound,
        uint8 nearInline
    ) public {
        for (uint256 s; s < SLOTS; ++s) {
            for (uint256 i; i < OUT; ++i) {
                uint256 v = bound(outputs[s][i], 0, P - 1);
                // Steer some elements to within a few units of the 26-bit inline bounds or the
                // int128 bounds, both signs.
                if ((nearInline >> (s * OUT + i)) & 1 == 1) {
                    v = (v & 1 == 0 ? 2 ** 25 - 2 + (v % 4) : P - 2 ** 25 - 1 + (v % 4));
                } else if ((nearBound >> (s * OUT + i)) & 1 == 1) {
                    v = (v & 1 == 0 ? 2 ** 127 - 2 + (v % 4) : P - 2 ** 127 - 1 + (v % 4));
                }
                outputs[s][i] = v;
            }
        }
        uint256[] memory ids = settleBoth(outputs);
        int256[][] memory emitted = emittedOutputs();
        for (uint256 s; s < SLOTS; ++s) {
            int256[] memory want = expected(outputs[s]);
            bool fits = true;
            for (uint256 i; i < OUT; ++i) {
                fits = fits && want[i] >= MIN && want[i] <= MAX;
            }
            assertEq(packedFlag(ids[s]), fits);
            assertEq(market.outputsOf(ids[s]), want);
            assertEq(emitted[s], want);
        }
    }
}
