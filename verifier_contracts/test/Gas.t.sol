// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ScreeningConsumer} from "../src/examples/ScreeningConsumer.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {IHalo2Verifier} from "../src/interfaces/IHalo2Verifier.sol";
import {CnnFixture} from "./fixtures/CnnFixture.sol";
import {MlpBatchFixture} from "./fixtures/MlpBatchFixture.sol";
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

/// @notice A consumer that accepts every callback and does nothing: the market's own callback cost.
contract NoopConsumer {
    function onInferenceResult(uint256, bytes32, int256[] calldata, uint8) external {}
}

/// @notice Gas per settled inference with the real batch-16 MLP proof (MlpBatchFixture), settling
///         1, 4 or all 16 of its slots in one `fulfillBatch`, and the parts it is made of. Run
///         `scripts/forge.sh test --match-contract BatchGasTest -vv` to print the figures.
/// @dev Requests are made in `setUp`, so the measured call finds their storage cold as a real
///      transaction does. "per inference" = (21,000 + calldata gas + execution gas) / settled
///      requests; calldata at 4 gas per zero byte and 16 per other byte (EIP-2028; the EIP-7623
///      floor of 10/40 per byte is far below this with the verifier's execution gas).
contract BatchGasTest is MarketTest {
    /// @dev forge prints these with -vv.
    event log_named_uint(string key, uint256 val);

    uint256 internal constant SLOTS = MlpBatchFixture.BATCH_SIZE;

    bytes32 internal batch;
    address internal batchVerifier;
    uint256[] internal ids;
    uint256[] internal consumerIds;

    function setUp() public override {
        super.setUp();
        (batch, batchVerifier) = registerMlpBatch();

        uint256[] memory instances = MlpBatchFixture.instances();
        address noop = address(new NoopConsumer());
        for (uint256 s; s < SLOTS; ++s) {
            bytes32 commitment = commitmentOf(
                instances, MlpBatchFixture.INPUT_OFFSET + s * MlpBatchFixture.INPUT_COUNT, MlpBatchFixture.INPUT_COUNT
            );
            ids.push(requestAs(requester, batch, commitment, address(0)));
            consumerIds.push(requestAs(requester, batch, commitment, noop));
        }
    }

    function settle(uint256[] storage from, uint256 count) internal {
        uint256[] memory settled = new uint256[](count);
        uint256[] memory slots = new uint256[](count);
        for (uint256 s; s < count; ++s) {
            settled[s] = from[s];
            slots[s] = s;
        }
        uint256[] memory instances = MlpBatchFixture.instances();
        bytes memory data =
            abi.encodeCall(InferenceMarket.fulfillBatch, (settled, slots, MlpBatchFixture.PROOF, instances));
        vm.prank(provider);
        market.fulfillBatch(settled, slots, MlpBatchFixture.PROOF, instances);
        uint256 execution = vm.lastCallGas().gasTotalUsed;
        uint256 calldataGas = calldataCost(data);
        emit log_named_uint("settled requests", count);
        emit log_named_uint("execution gas (verifier + market)", execution);
        emit log_named_uint("calldata gas", calldataGas);
        emit log_named_uint("gas per settled inference", (21_000 + calldataGas + execution) / count);
        assertEq(market.owed(provider), count * REWARD);
    }

    function calldataCost(bytes memory data) internal pure returns (uint256 cost) {
        for (uint256 i; i < data.length; ++i) {
            cost += data[i] == 0 ? 4 : 16;
        }
    }

    function test_Gas_FulfillBatch1() public {
        settle(ids, 1);
    }

    function test_Gas_FulfillBatch4() public {
        settle(ids, 4);
    }

    function test_Gas_FulfillBatch16() public {
        settle(ids, SLOTS);
    }

    function test_Gas_FulfillBatch16WithCallbacks() public {
        settle(consumerIds, SLOTS);
    }

    /// @dev The verifiers alone, called as the market calls them (cold, same arguments): the
    ///      batch-16 one, and the batch-1 MLP's for comparison.
    function test_Gas_VerifiersAlone() public {
        bool valid = IHalo2Verifier(batchVerifier).verifyProof(MlpBatchFixture.PROOF, MlpBatchFixture.instances());
        emit log_named_uint("batch-16 verifier execution gas", vm.lastCallGas().gasTotalUsed);
        assertTrue(valid);
        valid = IHalo2Verifier(mlpVerifier).verifyProof(MlpFixture.PROOF, MlpFixture.instances());
        emit log_named_uint("batch-1 verifier execution gas", vm.lastCallGas().gasTotalUsed);
        assertTrue(valid);
    }
}
