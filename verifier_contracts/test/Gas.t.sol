// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ScreeningConsumer} from "../src/examples/ScreeningConsumer.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {IHalo2Verifier} from "../src/interfaces/IHalo2Verifier.sol";
import {CnnFixture} from "./fixtures/CnnFixture.sol";
import {MlpBatchFixture} from "./fixtures/MlpBatchFixture.sol";
import {MlpBatchHashedFixture} from "./fixtures/MlpBatchHashedFixture.sol";
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

/// @notice Gas per settled inference with a real batch-16 MLP proof, settling 1, 4 or all 16 of
///         its slots in one `fulfillBatch`, and the parts it is made of: `BatchGasTest` (public
///         inputs, MlpBatchFixture) and `HashedBatchGasTest` (hashed inputs, MlpBatchHashedFixture).
///         Run `scripts/forge.sh test --match-contract BatchGasTest -vv` to print the figures.
/// @dev Requests are made in `setUp`, so the measured call finds their storage cold as a real
///      transaction does. "per inference" = (21,000 + calldata gas + execution gas) / settled
///      requests; calldata at 4 gas per zero byte and 16 per other byte (EIP-2028; the EIP-7623
///      floor of 10/40 per byte is far below this with the verifier's execution gas).
abstract contract BatchGasBase is MarketTest {
    /// @dev forge prints these with -vv.
    event log_named_uint(string key, uint256 val);

    bytes32 internal batch;
    address internal batchVerifier;
    uint256[] internal ids;
    uint256[] internal consumerIds;

    /// @dev The fixture's proof, instances, slot count and per-slot input layout.
    function proof() internal pure virtual returns (bytes memory);
    function fixtureInstances() internal pure virtual returns (uint256[] memory);
    function slotCount() internal pure virtual returns (uint256);
    function inputOffset() internal pure virtual returns (uint256);
    function inputCount() internal pure virtual returns (uint256);
    function register() internal virtual returns (bytes32 registrationId, address verifier);

    function setUp() public override {
        super.setUp();
        (batch, batchVerifier) = register();

        uint256[] memory instances = fixtureInstances();
        address noop = address(new NoopConsumer());
        for (uint256 s; s < slotCount(); ++s) {
            bytes32 commitment = commitmentOf(instances, inputOffset() + s * inputCount(), inputCount());
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
        uint256[] memory instances = fixtureInstances();
        bytes memory data = abi.encodeCall(InferenceMarket.fulfillBatch, (settled, slots, proof(), instances));
        vm.prank(provider);
        market.fulfillBatch(settled, slots, proof(), instances);
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
        settle(ids, slotCount());
    }

    function test_Gas_FulfillBatch16WithCallbacks() public {
        settle(consumerIds, slotCount());
    }

    /// @dev The batch verifier alone, called as the market calls it (cold, same arguments), and
    ///      its runtime size (EIP-170 allows 24,576 bytes).
    function test_Gas_VerifierAlone() public {
        bool valid = IHalo2Verifier(batchVerifier).verifyProof(proof(), fixtureInstances());
        emit log_named_uint("batch-16 verifier execution gas", vm.lastCallGas().gasTotalUsed);
        emit log_named_uint("batch-16 verifier runtime bytes", batchVerifier.code.length);
        assertTrue(valid);
    }
}

/// @notice Batch gas with public inputs: 30 input and 2 output instances per slot (512 in all).
contract BatchGasTest is BatchGasBase {
    function proof() internal pure override returns (bytes memory) {
        return MlpBatchFixture.PROOF;
    }

    function fixtureInstances() internal pure override returns (uint256[] memory) {
        return MlpBatchFixture.instances();
    }

    function slotCount() internal pure override returns (uint256) {
        return MlpBatchFixture.BATCH_SIZE;
    }

    function inputOffset() internal pure override returns (uint256) {
        return MlpBatchFixture.INPUT_OFFSET;
    }

    function inputCount() internal pure override returns (uint256) {
        return MlpBatchFixture.INPUT_COUNT;
    }

    function register() internal override returns (bytes32, address) {
        return registerMlpBatch();
    }

    /// @dev The batch-1 MLP's verifier, for comparison.
    function test_Gas_Batch1VerifierAlone() public {
        bool valid = IHalo2Verifier(mlpVerifier).verifyProof(MlpFixture.PROOF, MlpFixture.instances());
        emit log_named_uint("batch-1 verifier execution gas", vm.lastCallGas().gasTotalUsed);
        assertTrue(valid);
    }
}

/// @notice Batch gas with hashed inputs: one Poseidon hash and 2 output instances per slot (48 in
///         all); a request's commitment is keccak of its slot's hash instance.
contract HashedBatchGasTest is BatchGasBase {
    function proof() internal pure override returns (bytes memory) {
        return MlpBatchHashedFixture.PROOF;
    }

    function fixtureInstances() internal pure override returns (uint256[] memory) {
        return MlpBatchHashedFixture.instances();
    }

    function slotCount() internal pure override returns (uint256) {
        return MlpBatchHashedFixture.BATCH_SIZE;
    }

    function inputOffset() internal pure override returns (uint256) {
        return MlpBatchHashedFixture.INPUT_OFFSET;
    }

    function inputCount() internal pure override returns (uint256) {
        return MlpBatchHashedFixture.INPUT_COUNT;
    }

    function register() internal override returns (bytes32, address) {
        return registerMlpBatchHashed();
    }
}
