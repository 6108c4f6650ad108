// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceMarket} from "../src/InferenceMarket.sol";
import {MlpFixture} from "./fixtures/MlpFixture.sol";
import {MarketTest} from "./utils/MarketTest.sol";
import {MockVerifier} from "./utils/Mocks.sol";
import {Test} from "./utils/Test.sol";

/// @notice Drives the market with random requests, locks, fulfilments (real MLP proofs and an
///         accept-all verifier), batch fulfilments (a 4-slot accept-all model, sometimes listing a
///         request twice), refunds, slashes, withdrawals and time jumps, from a few actors.
contract MarketHandler is Test {
    uint256 internal constant ACTORS = 4;
    uint256 internal constant FUNDS = 1_000 ether;
    /// @dev The batch model's layout: SLOTS slots of IN inputs, then their OUT outputs each.
    uint256 internal constant SLOTS = 4;
    uint256 internal constant IN = 3;
    uint256 internal constant OUT = 2;

    InferenceMarket public immutable market;
    bytes32 public immutable realModel;
    bytes32 public immutable mockModel;
    bytes32 public immutable batchModel;

    address[] internal _actors;
    uint256[] internal _requestIds;
    uint256[] internal _batchIds;
    mapping(uint256 requestId => uint256) internal _inputSeed;

    /// @notice Successful settlements (fulfil or refund) per request id.
    mapping(uint256 requestId => uint256) public settlements;
    uint256 public doubleSettlements;
    uint256 public fulfilments;

    constructor(InferenceMarket market_, bytes32 realModel_, bytes32 mockModel_, bytes32 batchModel_) {
        market = market_;
        realModel = realModel_;
        mockModel = mockModel_;
        batchModel = batchModel_;
        string[ACTORS] memory names = ["alice", "bob", "carol", "dave"];
        for (uint256 i; i < ACTORS; ++i) {
            address actor = makeAddr(names[i]);
            vm.deal(actor, FUNDS);
            _actors.push(actor);
        }
    }

    // ---- actions

    function request(uint256 actorSeed, uint256 reward, uint256 ttl, uint256 inputSeed, bool real) external {
        address actor = _actor(actorSeed);
        reward = bound(reward, 1, 1 ether);
        ttl = bound(ttl, 1, 2 hours);
        bytes32 registrationId = real ? realModel : mockModel;
        inputSeed = real ? 0 : bound(inputSeed, 1, 1_000);
        bytes32 commitment = keccak256(abi.encodePacked(_inputs(_instances(inputSeed))));
        // forge-lint: disable-next-line(unsafe-typecast) timestamps fit in 64 bits
        uint64 deadline = uint64(block.timestamp + ttl);
        vm.prank(actor);
        uint256 id = market.requestInference{value: reward}(registrationId, commitment, "", deadline, address(0));
        _requestIds.push(id);
        _inputSeed[id] = inputSeed;
    }

    function requestBatch(uint256 actorSeed, uint256 reward, uint256 ttl, uint256 inputSeed) external {
        address actor = _actor(actorSeed);
        reward = bound(reward, 1, 1 ether);
        ttl = bound(ttl, 1, 2 hours);
        inputSeed = bound(inputSeed, 1, 1_000);
        // forge-lint: disable-next-line(unsafe-typecast) timestamps fit in 64 bits
        uint64 deadline = uint64(block.timestamp + ttl);
        vm.prank(actor);
        uint256 id = market.requestInference{value: reward}(
            batchModel, keccak256(abi.encodePacked(_slotInputs(inputSeed))), "", deadline, address(0)
        );
        _requestIds.push(id);
        _batchIds.push(id);
        _inputSeed[id] = inputSeed;
    }

    /// @dev `count` batch requests picked with stride `stride` (a stride of 0 lists one id several
    ///      times, which must revert), each at its own slot.
    function fulfillBatch(uint256 actorSeed, uint256 idSeed, uint256 count, uint256 stride) external {
        if (_batchIds.length == 0) return;
        count = bound(count, 1, SLOTS);
        stride = bound(stride, 0, 3);
        uint256[] memory ids = new uint256[](count);
        uint256[] memory slots = new uint256[](count);
        uint256[] memory instances = new uint256[](SLOTS * (IN + OUT));
        for (uint256 k; k < count; ++k) {
            uint256 id = _batchIds[(idSeed + k * stride) % _batchIds.length];
            ids[k] = id;
            slots[k] = SLOTS - 1 - k;
            uint256[] memory inputs = _slotInputs(_inputSeed[id]);
            for (uint256 i; i < IN; ++i) {
                instances[slots[k] * IN + i] = inputs[i];
            }
        }
        vm.prank(_actor(actorSeed));
        try market.fulfillBatch(ids, slots, "", instances) {
            for (uint256 k; k < count; ++k) {
                _settled(ids[k]);
            }
            fulfilments += count;
        } catch {}
    }

    function lock(uint256 actorSeed, uint256 idSeed, uint256 stake) external {
        uint256 id = _requestId(idSeed);
        if (id == 0) return;
        address actor = _actor(actorSeed);
        stake = bound(stake, 0, 1 ether);
        vm.prank(actor);
        try market.lockRequest{value: stake}(id) {} catch {}
    }

    function fulfill(uint256 actorSeed, uint256 idSeed) external {
        uint256 id = _requestId(idSeed);
        if (id == 0) return;
        uint256 seed = _inputSeed[id];
        bytes memory proof = seed == 0 ? MlpFixture.PROOF : bytes("");
        vm.prank(_actor(actorSeed));
        try market.fulfill(id, proof, _instances(seed)) {
            _settled(id);
            fulfilments += 1;
        } catch {}
    }

    function refund(uint256 idSeed) external {
        uint256 id = _requestId(idSeed);
        if (id == 0) return;
        try market.refund(id) {
            _settled(id);
        } catch {}
    }

    function slashLock(uint256 idSeed) external {
        uint256 id = _requestId(idSeed);
        if (id == 0) return;
        try market.slashLock(id) {} catch {}
    }

    function withdraw(uint256 actorSeed) external {
        vm.prank(_actor(actorSeed));
        try market.withdraw() {} catch {}
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 0, 30 minutes));
    }

    // ---- views for the invariants

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function requestIds() external view returns (uint256[] memory) {
        return _requestIds;
    }

    function totalFunds() external pure returns (uint256) {
        return ACTORS * FUNDS;
    }

    // ---- helpers

    function _settled(uint256 id) internal {
        settlements[id] += 1;
        if (settlements[id] > 1) doubleSettlements += 1;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return _actors[seed % ACTORS];
    }

    function _requestId(uint256 seed) internal view returns (uint256) {
        if (_requestIds.length == 0) return 0;
        return _requestIds[seed % _requestIds.length];
    }

    /// @dev Seed 0: the real proof's instances; otherwise instances with input 0 set to the seed.
    function _instances(uint256 seed) internal pure returns (uint256[] memory instances) {
        instances = MlpFixture.instances();
        if (seed != 0) instances[0] = seed;
    }

    function _slotInputs(uint256 seed) internal pure returns (uint256[] memory inputs) {
        inputs = new uint256[](IN);
        for (uint256 i; i < IN; ++i) {
            inputs[i] = seed * 1000 + i;
        }
    }

    function _inputs(uint256[] memory instances) internal pure returns (uint256[] memory inputs) {
        inputs = new uint256[](MlpFixture.INPUT_COUNT);
        for (uint256 i; i < inputs.length; ++i) {
            inputs[i] = instances[MlpFixture.INPUT_OFFSET + i];
        }
    }
}

/// @notice Funds are always fully accounted for, and no request settles twice.
contract InferenceMarketInvariantTest is MarketTest {
    MarketHandler internal handler;

    function setUp() public override {
        super.setUp();
        bytes32 mock = keccak256("accept-all mock");
        InferenceMarket.ModelConfig memory config = mlpConfig(address(new MockVerifier(MockVerifier.Mode.Accept)));
        (config.instanceCount, config.inputOffset, config.inputCount) = (20, 0, 3);
        (config.outputOffset, config.outputCount, config.batchSize) = (12, 2, 4);
        vm.prank(modelOwner);
        bytes32 batch = market.registerModel(keccak256("accept-all batch mock"), config);
        handler = new MarketHandler(market, MLP, registerMock(mock, MockVerifier.Mode.Accept), batch);
    }

    /// @dev Read by forge: only the handler is called.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_BalanceEqualsEscrowedPlusOwed() public view {
        assertSolvent();
    }

    function invariant_TotalOwedIsSumOfOwed() public view {
        address[] memory actors = handler.actors();
        uint256 sum;
        for (uint256 i; i < actors.length; ++i) {
            sum += market.owed(actors[i]);
        }
        assertEq(market.totalOwed(), sum, "totalOwed != sum of owed");
    }

    function invariant_TotalEscrowedIsOpenRewardsAndStakes() public view {
        uint256[] memory ids = handler.requestIds();
        uint256 sum;
        for (uint256 i; i < ids.length; ++i) {
            InferenceMarket.Request memory request = market.getRequest(ids[i]);
            if (request.status == InferenceMarket.Status.Open) {
                sum += request.reward + request.lockStake;
            } else {
                assertEq(request.lockStake, 0, "settled request holds a stake");
                assertEq(handler.settlements(ids[i]), 1, "settled without a recorded settlement");
            }
        }
        assertEq(market.totalEscrowed(), sum, "totalEscrowed != open rewards + stakes");
    }

    function invariant_NoRequestSettlesTwice() public view {
        assertEq(handler.doubleSettlements(), 0, "a request settled twice");
    }

    function invariant_EtherIsConserved() public view {
        address[] memory actors = handler.actors();
        uint256 sum = address(market).balance;
        for (uint256 i; i < actors.length; ++i) {
            sum += actors[i].balance;
        }
        assertEq(sum, handler.totalFunds(), "ether created or destroyed");
    }
}
