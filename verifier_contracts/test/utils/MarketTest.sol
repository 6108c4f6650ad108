// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IHalo2Verifier} from "../../src/interfaces/IHalo2Verifier.sol";
import {InferenceMarket} from "../../src/InferenceMarket.sol";
import {CnnFixture} from "../fixtures/CnnFixture.sol";
import {MlpBatchFixture} from "../fixtures/MlpBatchFixture.sol";
import {MlpBatchHashedFixture} from "../fixtures/MlpBatchHashedFixture.sol";
import {MlpFixture} from "../fixtures/MlpFixture.sol";
import {MockVerifier} from "./Mocks.sol";
import {Test} from "./Test.sol";

/// @notice Shared set-up: a market with the real MLP verifier registered, actors and helpers.
abstract contract MarketTest is Test {
    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant REWARD = 1 ether;
    uint96 internal constant MIN_STAKE = 0.1 ether;
    uint32 internal constant LOCK_DURATION = 10 minutes;
    uint64 internal constant TTL = 1 hours;

    bytes32 internal constant MLP_ID = MlpFixture.MODEL_ID;
    bytes32 internal constant CNN_ID = CnnFixture.MODEL_ID;

    InferenceMarket internal market;
    address internal mlpVerifier;

    address internal modelOwner = makeAddr("modelOwner");

    /// @notice The MLP's registration by `modelOwner` (registered in `setUp`).
    bytes32 internal MLP;
    /// @notice The CNN's registration id for `modelOwner` (registered by the suites that use it).
    bytes32 internal CNN;
    address internal requester = makeAddr("requester");
    address internal provider = makeAddr("provider");
    address internal copier = makeAddr("copier");

    function setUp() public virtual {
        vm.warp(START);
        market = new InferenceMarket();
        // deployCode keeps the 13 KB verifiers out of the test contracts' own bytecode.
        mlpVerifier = vm.deployCode("MlpVerifier.sol:MlpVerifier");
        vm.prank(modelOwner);
        MLP = market.registerModel(MLP_ID, mlpConfig(mlpVerifier));
        CNN = market.registrationIdOf(modelOwner, CNN_ID);
        vm.deal(requester, 100 ether);
        vm.deal(provider, 100 ether);
        vm.deal(copier, 100 ether);
    }

    // ---- model configs

    function mlpConfig(address verifier) internal pure returns (InferenceMarket.ModelConfig memory) {
        return InferenceMarket.ModelConfig({
            verifier: verifier,
            vkDigest: MlpFixture.VK_SHA256,
            settingsDigest: MlpFixture.SETTINGS_SHA256,
            instanceCount: MlpFixture.INSTANCE_COUNT,
            inputOffset: MlpFixture.INPUT_OFFSET,
            inputCount: MlpFixture.INPUT_COUNT,
            outputOffset: MlpFixture.OUTPUT_OFFSET,
            outputCount: MlpFixture.OUTPUT_COUNT,
            batchSize: MlpFixture.BATCH_SIZE,
            inputScale: MlpFixture.INPUT_SCALE,
            outputScale: MlpFixture.OUTPUT_SCALE,
            minLockStake: MIN_STAKE,
            lockDuration: LOCK_DURATION
        });
    }

    function cnnConfig(address verifier) internal pure returns (InferenceMarket.ModelConfig memory) {
        return InferenceMarket.ModelConfig({
            verifier: verifier,
            vkDigest: CnnFixture.VK_SHA256,
            settingsDigest: CnnFixture.SETTINGS_SHA256,
            instanceCount: CnnFixture.INSTANCE_COUNT,
            inputOffset: CnnFixture.INPUT_OFFSET,
            inputCount: CnnFixture.INPUT_COUNT,
            outputOffset: CnnFixture.OUTPUT_OFFSET,
            outputCount: CnnFixture.OUTPUT_COUNT,
            batchSize: CnnFixture.BATCH_SIZE,
            inputScale: CnnFixture.INPUT_SCALE,
            outputScale: CnnFixture.OUTPUT_SCALE,
            minLockStake: MIN_STAKE,
            lockDuration: LOCK_DURATION
        });
    }

    /// @notice The batch-16 MLP (16 slots of 30 inputs and 2 outputs).
    function mlpBatchConfig(address verifier) internal pure returns (InferenceMarket.ModelConfig memory) {
        return InferenceMarket.ModelConfig({
            verifier: verifier,
            vkDigest: MlpBatchFixture.VK_SHA256,
            settingsDigest: MlpBatchFixture.SETTINGS_SHA256,
            instanceCount: MlpBatchFixture.INSTANCE_COUNT,
            inputOffset: MlpBatchFixture.INPUT_OFFSET,
            inputCount: MlpBatchFixture.INPUT_COUNT,
            outputOffset: MlpBatchFixture.OUTPUT_OFFSET,
            outputCount: MlpBatchFixture.OUTPUT_COUNT,
            batchSize: MlpBatchFixture.BATCH_SIZE,
            inputScale: MlpBatchFixture.INPUT_SCALE,
            outputScale: MlpBatchFixture.OUTPUT_SCALE,
            minLockStake: MIN_STAKE,
            lockDuration: LOCK_DURATION
        });
    }

    /// @notice Installs the batch-16 MLP verifier and registers it as `modelOwner`.
    /// @dev Its runtime code is etched. It is 13,388 bytes, under EIP-170's 24,576 since compile
    ///      lays batch circuits out without Freivalds' argument; it was 25,164 before.
    function registerMlpBatch() internal returns (bytes32 registrationId, address verifier) {
        verifier = makeAddr("MlpBatchVerifier");
        vm.etch(verifier, vm.getDeployedCode("MlpBatchVerifier.sol:MlpBatchVerifier"));
        vm.prank(modelOwner);
        registrationId = market.registerModel(MlpBatchFixture.MODEL_ID, mlpBatchConfig(verifier));
    }

    /// @notice The batch-16 MLP compiled with hashed inputs (16 slots of 1 input hash and 2 outputs).
    function mlpBatchHashedConfig(address verifier) internal pure returns (InferenceMarket.ModelConfig memory) {
        return InferenceMarket.ModelConfig({
            verifier: verifier,
            vkDigest: MlpBatchHashedFixture.VK_SHA256,
            settingsDigest: MlpBatchHashedFixture.SETTINGS_SHA256,
            instanceCount: MlpBatchHashedFixture.INSTANCE_COUNT,
            inputOffset: MlpBatchHashedFixture.INPUT_OFFSET,
            inputCount: MlpBatchHashedFixture.INPUT_COUNT,
            outputOffset: MlpBatchHashedFixture.OUTPUT_OFFSET,
            outputCount: MlpBatchHashedFixture.OUTPUT_COUNT,
            batchSize: MlpBatchHashedFixture.BATCH_SIZE,
            inputScale: MlpBatchHashedFixture.INPUT_SCALE,
            outputScale: MlpBatchHashedFixture.OUTPUT_SCALE,
            minLockStake: MIN_STAKE,
            lockDuration: LOCK_DURATION
        });
    }

    /// @notice Installs the hashed batch-16 MLP verifier and registers it as `modelOwner`.
    /// @dev Its runtime code (18,004 bytes; 30,421 with Freivalds' argument) is etched as well.
    function registerMlpBatchHashed() internal returns (bytes32 registrationId, address verifier) {
        verifier = makeAddr("MlpBatchHashedVerifier");
        vm.etch(verifier, vm.getDeployedCode("MlpBatchHashedVerifier.sol:MlpBatchHashedVerifier"));
        vm.prank(modelOwner);
        registrationId = market.registerModel(MlpBatchHashedFixture.MODEL_ID, mlpBatchHashedConfig(verifier));
    }

    /// @notice The documented `layoutHashOf` encoding of a config's layout and scales.
    function layoutHashOf(InferenceMarket.ModelConfig memory c) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                c.instanceCount,
                c.inputOffset,
                c.inputCount,
                c.outputOffset,
                c.outputCount,
                c.batchSize,
                c.inputScale,
                c.outputScale
            )
        );
    }

    function mlpLayoutHash() internal pure returns (bytes32) {
        return layoutHashOf(mlpConfig(address(0)));
    }

    /// @notice Registers (as `modelOwner`) a model with the MLP layout whose verifier always
    ///         returns `mode`'s answer; returns the registration id.
    function registerMock(bytes32 modelId, MockVerifier.Mode mode) internal returns (bytes32 registrationId) {
        address verifier = address(new MockVerifier(mode));
        vm.prank(modelOwner);
        registrationId = market.registerModel(modelId, mlpConfig(verifier));
    }

    // ---- instances and commitments

    function commitmentOf(uint256[] memory instances, uint256 offset, uint256 count) internal pure returns (bytes32) {
        uint256[] memory inputs = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            inputs[i] = instances[offset + i];
        }
        return keccak256(abi.encodePacked(inputs));
    }

    function mlpCommitment(uint256[] memory instances) internal pure returns (bytes32) {
        return commitmentOf(instances, MlpFixture.INPUT_OFFSET, MlpFixture.INPUT_COUNT);
    }

    // ---- actions

    function requestAs(address who, bytes32 registrationId, bytes32 commitment, address consumer)
        internal
        returns (uint256 requestId)
    {
        vm.prank(who);
        requestId = market.requestInference{value: REWARD}(
            registrationId, commitment, "input.json", uint64(block.timestamp + TTL), consumer
        );
    }

    function requestMlp(address consumer) internal returns (uint256) {
        return requestAs(requester, MLP, mlpCommitment(MlpFixture.instances()), consumer);
    }

    function lockAs(address who, uint256 requestId) internal {
        vm.prank(who);
        market.lockRequest{value: MIN_STAKE}(requestId);
    }

    function fulfillMlpAs(address who, uint256 requestId) internal {
        vm.prank(who);
        market.fulfill(requestId, MlpFixture.PROOF, MlpFixture.instances());
    }

    function assertSolvent() internal view {
        assertEq(address(market).balance, market.totalEscrowed() + market.totalOwed(), "balance != escrowed + owed");
    }

    function statusOf(uint256 requestId) internal view returns (InferenceMarket.Status) {
        return market.getRequest(requestId).status;
    }
}
