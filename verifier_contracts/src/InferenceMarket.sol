// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IHalo2Verifier} from "./interfaces/IHalo2Verifier.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";

/// @title InferenceMarket
/// @notice An escrow market for zero-knowledge proofs of ML inference. A requester escrows a reward
///         for running a registered model on committed inputs; a provider (optionally after locking
///         the request with a stake) settles it with an ezkl proof checked by the verifier pinned for
///         that model, and is paid through pull payments. A model compiled for a batch has `batchSize`
///         slots: one proof can settle up to that many requests (`fulfillBatch`), one per slot.
/// @dev Invariant: `address(this).balance == totalEscrowed + totalOwed`. A request settles at most
///      once (status leaves `Open` exactly once), never keyed on proof bytes.
contract InferenceMarket is ReentrancyGuardTransient {
    /// @notice How a model's circuit and its pinned verifier are used.
    struct ModelConfig {
        address verifier; // the ezkl Halo2Verifier deployed for this model
        bytes32 vkDigest; // sha256 of the bundle's vk.key
        bytes32 settingsDigest; // sha256 of the bundle's settings.json
        uint32 instanceCount; // total public instances
        // Slot s (0 <= s < batchSize) has inputs instances[inputOffset + s*inputCount ..][:inputCount]
        // and outputs instances[outputOffset + s*outputCount ..][:outputCount].
        uint32 inputOffset; // where slot 0's input commitment instances are
        uint32 inputCount; // input instances of ONE slot
        uint32 outputOffset; // where slot 0's outputs are
        uint32 outputCount; // output instances of ONE slot
        uint32 batchSize; // slots settled separately (>= 1); 1: a request covers every instance
        uint8 inputScale; // fixed-point scales (value = int / 2**scale)
        uint8 outputScale;
        uint96 minLockStake; // stake a provider must post to lock a request (> 0)
        uint32 lockDuration; // seconds a lock lasts (MIN_LOCK_DURATION..MAX_LOCK_DURATION)
    }

    /// @notice A registered model.
    struct Model {
        ModelConfig config;
        bytes32 verifierCodeHash; // `verifier.codehash` at registration
        address owner; // may pause; transferable
        bool paused;
        bytes32 modelId; // the bundle's model id
        address registrant; // who registered it: part of the registration id, never changes
    }

    /// @notice The lifecycle of a request: `Open` is left exactly once.
    enum Status {
        None,
        Open,
        Fulfilled,
        Refunded
    }

    /// @notice A request for one inference: one slot of its model's proof, as `getRequest` returns it.
    /// @dev The lock fields describe the current lock and are cleared when it is slashed or the
    ///      request leaves `Open`; `lockStake` is escrowed while `lockedBy != address(0)`.
    ///      `outputsPacked` (set at settlement) says the outputs are stored narrower than one int256
    ///      per storage word: in the request's own state word, or two int128 per word. The market
    ///      stores a request packed (`StoredRequest`); `reward` and `lockStake` fit in uint96 and
    ///      `deadline` and `lockDeadline` in uint40 (larger values are refused).
    struct Request {
        bytes32 registrationId;
        address requester;
        address consumer;
        uint64 deadline;
        Status status;
        bool outputsPacked;
        uint256 reward;
        bytes32 inputCommitment;
        address lockedBy;
        uint64 lockDeadline;
        uint256 lockStake;
    }

    /// @dev A request as stored: settling an unlocked request without a consumer reads two
    ///      storage words (the commitment and `state`) and writes one (`state`). `state` packs,
    ///      from the lowest bit: the status (2 bits), the outputs' format (2 bits, `_OUTPUTS_*`),
    ///      whether there is a consumer (1 bit; 3 bits unused), the deadline (40 bits), the
    ///      model's registration index (32 bits, `_registrationAt`), the reward (96 bits), and 80
    ///      bits that hold the lock deadline (40 bits, 0 when unlocked) while the request is open
    ///      and its outputs (`_OUTPUTS_INLINE`) once it is fulfilled, so that outputs that fit
    ///      there cost no storage write of their own. `consumer` is written only when there is
    ///      one; `lockedBy` and `lockStake` only by `lockRequest`, and read only when the lock
    ///      deadline is set.
    struct StoredRequest {
        bytes32 inputCommitment;
        uint256 state;
        address requester;
        address consumer;
        address lockedBy;
        uint96 lockStake;
    }

    /// @dev What settling one request needs of its registration, read once per batch.
    struct OutputRegion {
        bytes32 registrationId;
        uint256 outputOffset;
        uint256 outputCount;
    }

    /// @notice The BN254 scalar field: every public instance is an element of it.
    uint256 public constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice Gas given to a consumer's `onInferenceResult`, exactly.
    uint256 public constant CALLBACK_GAS_LIMIT = 200_000;

    /// @notice Gas `fulfill` keeps beyond the callback's 64/63 share: the call itself (a cold
    ///         account costs 2,600) and the `ConsumerCallbackFailed` event after it.
    uint256 public constant CALLBACK_GAS_MARGIN = 10_000;

    /// @notice The shortest lock a model may configure: a lock must outlast the time it takes to get
    ///         the holder's fulfil mined, or its owner could let it lapse and slash the stake.
    uint32 public constant MIN_LOCK_DURATION = 60;

    /// @notice The longest lock a model may configure: a lapsed lock must not hold a request for long.
    uint32 public constant MAX_LOCK_DURATION = 1 days;

    // The fields of `StoredRequest.state`.
    uint256 private constant _STATUS_MASK = 3;
    uint256 private constant _FORMAT_SHIFT = 2; // 2 bits
    uint256 private constant _HAS_CONSUMER = 1 << 4;
    uint256 private constant _DEADLINE_SHIFT = 8;
    uint256 private constant _INDEX_SHIFT = 48;
    uint256 private constant _REWARD_SHIFT = 80;
    uint256 private constant _LOCK_SHIFT = 176; // the lock deadline while open; inline outputs after
    uint256 private constant _UINT40 = (1 << 40) - 1;
    uint256 private constant _UINT32 = (1 << 32) - 1;
    uint256 private constant _UINT96 = (1 << 96) - 1;
    /// @dev The bits of `state` that settlement keeps: the consumer flag, deadline, registration
    ///      index and reward (it replaces the status and format, and the lock deadline goes).
    // forge-lint: disable-next-line(incorrect-shift) a mask of the low 176 bits
    uint256 private constant _KEEP_AT_SETTLEMENT = ((1 << _LOCK_SHIFT) - 1) ^ 15;
    uint256 private constant _INLINE_BITS = 256 - _LOCK_SHIFT;
    // How a fulfilled request's outputs are stored (`state` bits 2..3).
    uint256 private constant _OUTPUTS_INLINE = 1; // in `state` from bit 176, `_INLINE_BITS / count` bits each
    uint256 private constant _OUTPUTS_PAIRS = 2; // `_outputs`: two int128 per word
    uint256 private constant _OUTPUTS_WORDS = 3; // `_outputs`: one int256 per word

    mapping(bytes32 registrationId => Model) private _models;
    /// @dev Registrations numbered from 1 in order, so that a request stores 32 bits, not 256.
    mapping(uint256 index => bytes32 registrationId) private _registrationAt;
    mapping(bytes32 registrationId => uint256 index) private _indexOf;
    uint256 private _registrationCount;
    mapping(uint256 requestId => StoredRequest) private _requests;
    /// @dev A fulfilled request's outputs when they do not fit in its state word, `outputCount` of
    ///      its model: no length word is stored (the model has it). When every output of the
    ///      request fits in int128 (`_OUTPUTS_PAIRS`), word `w` holds outputs `2w` (low half) and
    ///      `2w + 1` (high half), halving the fresh slots; otherwise word `i` is output `i`. Zero
    ///      words are never written.
    mapping(uint256 requestId => mapping(uint256 index => uint256)) private _outputs;
    mapping(address account => uint256) private _owed;

    /// @notice The id the next request will get (ids start at 1).
    uint256 public nextRequestId = 1;

    /// @notice Wei held for open requests: their rewards plus the stakes of their locks.
    uint256 public totalEscrowed;

    /// @notice Wei credited to accounts and not yet withdrawn.
    uint256 public totalOwed;

    /// @notice A model was registered by `registrant` and its verifier pinned.
    event ModelRegistered(
        bytes32 indexed registrationId,
        bytes32 indexed modelId,
        address indexed registrant,
        address verifier,
        bytes32 verifierCodeHash,
        bytes32 vkDigest,
        bytes32 settingsDigest
    );

    /// @notice A model was paused or unpaused.
    event ModelPaused(bytes32 indexed registrationId, bool paused);

    /// @notice A model changed owner.
    event ModelOwnershipTransferred(
        bytes32 indexed registrationId, address indexed previousOwner, address indexed newOwner
    );

    /// @notice A reward was escrowed for an inference; providers read the inputs from `inputData`.
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed registrationId,
        address indexed requester,
        uint256 reward,
        uint64 deadline,
        bytes32 inputCommitment,
        address consumer,
        bytes inputData
    );

    /// @notice A provider staked for the exclusive right to fulfil until `lockDeadline`.
    event RequestLocked(uint256 indexed requestId, address indexed provider, uint256 stake, uint64 lockDeadline);

    /// @notice A lapsed lock's stake was credited to the requester.
    event LockSlashed(uint256 indexed requestId, address indexed provider, uint256 stake);

    /// @notice A request was settled by a valid proof; `outputs` are signed fixed point.
    event InferenceFulfilled(
        uint256 indexed requestId,
        bytes32 indexed registrationId,
        address indexed provider,
        uint256 reward,
        int256[] outputs
    );

    /// @notice The consumer's callback reverted or ran out of gas; the settlement stands.
    event ConsumerCallbackFailed(uint256 indexed requestId, address indexed consumer);

    /// @notice An expired request's reward (and any lapsed stake) was credited to the requester.
    event RequestRefunded(uint256 indexed requestId, address indexed requester, uint256 amount);

    /// @notice An account withdrew what it was owed.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice No model is registered under this id.
    error InferenceMarketUnknownModel(bytes32 registrationId);
    /// @notice A model is already registered under this id.
    error InferenceMarketModelAlreadyRegistered(bytes32 registrationId);
    /// @notice Only the model's owner may do this.
    error InferenceMarketNotModelOwner(bytes32 registrationId, address caller);
    /// @notice The new owner is the zero address.
    error InferenceMarketInvalidOwner();
    /// @notice The model is paused: no new requests or locks.
    error InferenceMarketModelPaused(bytes32 registrationId);
    /// @notice A request must escrow a reward.
    error InferenceMarketZeroReward();
    /// @notice A reward or lock stake above `type(uint96).max` wei (about 7.9e10 ether).
    error InferenceMarketAmountTooLarge(uint256 amount);
    /// @notice The deadline is not in the future, or beyond `type(uint40).max` (year 36812).
    error InferenceMarketBadDeadline(uint64 deadline);
    /// @notice The request does not exist or is already settled.
    error InferenceMarketRequestNotOpen(uint256 requestId);
    /// @notice The request's deadline has passed.
    error InferenceMarketDeadlinePassed(uint256 requestId);
    /// @notice The request's deadline has not passed yet.
    error InferenceMarketDeadlineNotReached(uint256 requestId);
    /// @notice Another provider holds an active lock on the request.
    error InferenceMarketRequestLocked(uint256 requestId, address lockedBy);
    /// @notice The stake is below the model's `minLockStake`.
    error InferenceMarketStakeTooLow(uint256 stake, uint256 minLockStake);
    /// @notice The lock has not lapsed yet.
    error InferenceMarketLockNotLapsed(uint256 requestId);
    /// @notice A lock taken now would outlast the request's deadline (`now + lockDuration > deadline`);
    ///         locks are never cut short, so the request can no longer be locked.
    error InferenceMarketLockWindowTooShort(uint256 requestId);
    /// @notice The request is not locked.
    error InferenceMarketNotLocked(uint256 requestId);
    /// @notice The number of public instances differs from the model's.
    error InferenceMarketInstanceCount(uint256 expected, uint256 actual);
    /// @notice The input instances do not match the request's commitment.
    error InferenceMarketInputMismatch(uint256 requestId);
    /// @notice The pinned verifier's code changed since registration.
    error InferenceMarketVerifierCodeChanged(address verifier);
    /// @notice The pinned verifier rejected the proof (revert, empty or short return, or false).
    error InferenceMarketProofRejected(uint256 requestId);
    /// @notice Too little gas left to give the consumer callback `CALLBACK_GAS_LIMIT`.
    error InferenceMarketInsufficientGas();
    /// @notice The caller is owed nothing.
    error InferenceMarketNothingOwed();
    /// @notice Sending the withdrawn amount failed.
    error InferenceMarketTransferFailed();
    /// @notice The model's instance layout is inconsistent.
    error InferenceMarketBadLayout();
    /// @notice The lock terms are unusable: `minLockStake` must be positive and `lockDuration` in
    ///         `MIN_LOCK_DURATION..MAX_LOCK_DURATION`.
    error InferenceMarketBadLockTerms();
    /// @notice The verifier address holds no code.
    error InferenceMarketNoVerifierCode(address verifier);
    /// @notice A batch must settle at least one request.
    error InferenceMarketEmptyBatch();
    /// @notice `requestIds` and `slots` differ in length.
    error InferenceMarketBatchLengthMismatch(uint256 requestIds, uint256 slots);
    /// @notice A slot is not below the model's `batchSize`.
    error InferenceMarketSlotOutOfRange(uint256 slot, uint256 batchSize);
    /// @notice Two requests of a batch name the same slot.
    error InferenceMarketDuplicateSlot(uint256 slot);
    /// @notice A request of the batch belongs to another registration than the batch's first request.
    error InferenceMarketModelMismatch(uint256 requestId, bytes32 registrationId);
    /// @notice Registrations are numbered in 32 bits, and all 4,294,967,295 are taken.
    error InferenceMarketTooManyRegistrations();

    /// @notice Registers a model and pins its verifier (address and code hash); the caller owns it.
    /// @dev Permissionless, and namespaced by registrant: the registration's id is
    ///      `registrationIdOf(msg.sender, modelId)`, so anyone may register any model id with any
    ///      verifier and lock terms, but never under someone else's registration id. A squatter
    ///      cannot take a model id from its owner (it only gets a registration of its own), and a
    ///      requester or consumer who pins the registration id pins the registrant, whose lock terms
    ///      and pausing it trusts. They must still check the registration (`getModel`: verifier
    ///      code hash, `vkDigest`, `settingsDigest`, layout, or the code hash and `layoutHashOf`)
    ///      against the bundle they trust.
    /// @param modelId The model's id (zkinfer's `model_id` of the bundle).
    /// @param config The verifier, digests, instance layout, scales and lock parameters.
    /// @return registrationId `registrationIdOf(msg.sender, modelId)`: the id every other function takes.
    function registerModel(bytes32 modelId, ModelConfig calldata config) external returns (bytes32 registrationId) {
        registrationId = registrationIdOf(msg.sender, modelId);
        if (_models[registrationId].config.verifier != address(0)) {
            revert InferenceMarketModelAlreadyRegistered(registrationId);
        }
        if (config.verifier.code.length == 0) revert InferenceMarketNoVerifierCode(config.verifier);
        _checkLayout(config);
        _checkLockTerms(config);

        bytes32 codeHash = config.verifier.codehash;
        Model storage model = _models[registrationId];
        model.config = config;
        model.verifierCodeHash = codeHash;
        model.owner = msg.sender;
        model.modelId = modelId;
        model.registrant = msg.sender;
        uint256 index = ++_registrationCount;
        if (index > _UINT32) revert InferenceMarketTooManyRegistrations();
        _registrationAt[index] = registrationId;
        _indexOf[registrationId] = index;
        emit ModelRegistered(
            registrationId, modelId, msg.sender, config.verifier, codeHash, config.vkDigest, config.settingsDigest
        );
    }

    /// @notice Pauses or unpauses a model. Paused: no new requests and no new locks. Requests
    ///         already open can still be fulfilled (by the lock holder while its lock is active),
    ///         refunded and slashed, so that pausing can neither strand funds nor let an owner who
    ///         is also the requester slash a provider's stake by blocking its fulfilment.
    /// @param registrationId The registration (`registrationIdOf`).
    /// @param paused Whether it is paused.
    function setModelPaused(bytes32 registrationId, bool paused) external {
        _onlyModelOwner(registrationId).paused = paused;
        emit ModelPaused(registrationId, paused);
    }

    /// @notice Hands a model to a new owner.
    /// @param registrationId The registration (`registrationIdOf`).
    /// @param newOwner The new owner (not the zero address).
    function transferModelOwnership(bytes32 registrationId, address newOwner) external {
        if (newOwner == address(0)) revert InferenceMarketInvalidOwner();
        Model storage model = _onlyModelOwner(registrationId);
        model.owner = newOwner;
        emit ModelOwnershipTransferred(registrationId, msg.sender, newOwner);
    }

    /// @notice Escrows `msg.value` as the reward for running the registered model on committed inputs.
    /// @param registrationId A registration (`registrationIdOf`) of an unpaused model.
    /// @param inputCommitment `inputCommitmentOf(inputInstances)` of the inputs to prove.
    /// @param inputData The inputs for providers (opaque to the market: only emitted).
    /// @param deadline Last timestamp at which the request can be fulfilled.
    /// @param consumer A contract to call back with the proven outputs, or address(0).
    /// @return requestId The new request's id.
    function requestInference(
        bytes32 registrationId,
        bytes32 inputCommitment,
        bytes calldata inputData,
        uint64 deadline,
        address consumer
    ) external payable returns (uint256 requestId) {
        _activeModel(registrationId);
        if (msg.value == 0) revert InferenceMarketZeroReward();
        if (msg.value > type(uint96).max) revert InferenceMarketAmountTooLarge(msg.value);
        if (deadline <= block.timestamp || deadline > _UINT40) revert InferenceMarketBadDeadline(deadline);

        requestId = nextRequestId++;
        StoredRequest storage request = _requests[requestId];
        request.inputCommitment = inputCommitment;
        uint256 state = uint256(Status.Open) | (uint256(deadline) << _DEADLINE_SHIFT)
            | (_indexOf[registrationId] << _INDEX_SHIFT) | (msg.value << _REWARD_SHIFT);
        if (consumer != address(0)) {
            state |= _HAS_CONSUMER;
            request.consumer = consumer;
        }
        request.state = state;
        request.requester = msg.sender;
        totalEscrowed += msg.value;
        emit InferenceRequested(
            requestId, registrationId, msg.sender, msg.value, deadline, inputCommitment, consumer, inputData
        );
    }

    /// @notice Stakes `msg.value` for the exclusive right to fulfil a request until the lock deadline
    ///         `now + lockDuration`. A lock always lasts the model's full `lockDuration`: it is never
    ///         cut short by the request's deadline, so a request whose deadline is nearer than that
    ///         cannot be locked (`InferenceMarketLockWindowTooShort`). A lapsed lock is slashed first.
    /// @param requestId An open request with `now + lockDuration <= deadline`, unlocked or with a
    ///        lapsed lock.
    function lockRequest(uint256 requestId) external payable {
        (StoredRequest storage request, uint256 state) = _openRequest(requestId);
        ModelConfig storage config = _activeModel(_registrationAt[_indexIn(state)]).config;
        uint256 deadline = _deadlineIn(state);
        if (block.timestamp > deadline) revert InferenceMarketDeadlinePassed(requestId);
        uint256 lockEnd = block.timestamp + config.lockDuration;
        if (lockEnd > deadline) revert InferenceMarketLockWindowTooShort(requestId);
        uint256 lockDeadline = _lockDeadlineIn(state);
        if (lockDeadline != 0) {
            if (block.timestamp <= lockDeadline) revert InferenceMarketRequestLocked(requestId, request.lockedBy);
            _slash(requestId, request);
        }
        if (msg.value < config.minLockStake) revert InferenceMarketStakeTooLow(msg.value, config.minLockStake);
        if (msg.value > type(uint96).max) revert InferenceMarketAmountTooLarge(msg.value);

        // lockEnd <= deadline < 2**40 and lockEnd > 0: the lock deadline field is non-zero while locked.
        request.state = (state & ~(_UINT40 << _LOCK_SHIFT)) | (lockEnd << _LOCK_SHIFT);
        request.lockedBy = msg.sender;
        // forge-lint: disable-next-line(unsafe-typecast) checked above
        request.lockStake = uint96(msg.value);
        totalEscrowed += msg.value;
        // forge-lint: disable-next-line(unsafe-typecast) lockEnd <= deadline < 2**40
        emit RequestLocked(requestId, msg.sender, msg.value, uint64(lockEnd));
    }

    /// @notice Settles a request with a proof checked by the model's pinned verifier, credits the
    ///         reward (and the caller's own lock stake) to the caller, then calls the consumer back
    ///         with exactly `CALLBACK_GAS_LIMIT` gas.
    /// @dev The request is settled as slot 0: reverts unless slot 0's input instances hash to the
    ///      request's commitment; the other slots of a batch model are padding. A lapsed lock held by
    ///      someone else is slashed to the requester. Fails closed: a verifier revert, empty or
    ///      short return data, or `false` all revert with `InferenceMarketProofRejected`. Works on a
    ///      paused model: pausing only stops new requests and locks.
    /// @param requestId An open request, not past its deadline.
    /// @param proof The proof bytes (ezkl's `hex_proof`).
    /// @param instances All public instances of the proof, in circuit order.
    function fulfill(uint256 requestId, bytes calldata proof, uint256[] calldata instances) external nonReentrant {
        (StoredRequest storage request, uint256 state) = _openRequest(requestId);
        bytes32 registrationId = _registrationAt[_indexIn(state)];
        // Not `_activeModel`: an open request's model exists, and a pause must not block it.
        Model storage model = _models[registrationId];
        ModelConfig storage config = model.config;
        _checkTerms(requestId, request, state);
        _checkInstanceCount(config, instances);
        _checkSlotInputs(requestId, request, config.inputOffset, config.inputCount, instances);
        _verify(requestId, model, proof, instances);

        OutputRegion memory region = OutputRegion(registrationId, config.outputOffset, config.outputCount);
        (uint256 credited, uint256 released, int256[] memory outputs) = _settle(region, requestId, 0, instances);
        _owed[msg.sender] += credited;
        totalEscrowed -= released;
        totalOwed += released;

        // Interactions last: the request is already settled and paid.
        if (state & _HAS_CONSUMER != 0) {
            _callConsumer(requestId, request.consumer, registrationId, outputs, config.outputScale);
        }
    }

    /// @notice Settles up to `batchSize` open requests of one registration with ONE proof: request
    ///         `requestIds[i]` is slot `slots[i]` of the proof. Credits every reward (and the
    ///         caller's own lock stakes) to the caller, then calls each consumer back with exactly
    ///         `CALLBACK_GAS_LIMIT` gas, in list order.
    /// @dev All or nothing. Every request must be open, of the first request's registration, not
    ///      past its deadline and not under another provider's active lock, and its commitment
    ///      must equal its slot's input instances; slots must be distinct and below `batchSize`.
    ///      Slots not listed are padding and are not checked. Checks, then the single verifier call,
    ///      then the effects (a request id listed twice reverts there, with
    ///      `InferenceMarketRequestNotOpen`), then the callbacks. A lapsed lock held by someone else
    ///      is slashed to the requester. Fails closed like `fulfill`; `InferenceMarketProofRejected`
    ///      names the first request. Works on a paused model. Emits `InferenceFulfilled` per request.
    /// @param requestIds The requests to settle (at least one).
    /// @param slots Each request's slot in the proof, same length as `requestIds`.
    /// @param proof The proof bytes (ezkl's `hex_proof`).
    /// @param instances All public instances of the proof, in circuit order.
    function fulfillBatch(
        uint256[] calldata requestIds,
        uint256[] calldata slots,
        bytes calldata proof,
        uint256[] calldata instances
    ) external nonReentrant {
        (bytes32 registrationId, uint256 index) = _batchRegistration(requestIds, slots);
        ModelConfig storage config = _models[registrationId].config;
        _checkInstanceCount(config, instances);
        _checkBatch(index, config, requestIds, slots, instances);
        _verify(requestIds[0], _models[registrationId], proof, instances);

        int256[][] memory outputs = _settleBatch(registrationId, config, requestIds, slots, instances);

        // Interactions last: every request is already settled and paid.
        _callConsumers(registrationId, config.outputScale, requestIds, outputs);
    }

    /// @notice After the deadline of a request still open, credits its reward (and any lapsed lock's
    ///         stake) to the requester. Anyone may call.
    /// @param requestId An open request past its deadline.
    function refund(uint256 requestId) external {
        (StoredRequest storage request, uint256 state) = _openRequest(requestId);
        if (block.timestamp <= _deadlineIn(state)) revert InferenceMarketDeadlineNotReached(requestId);
        request.state = (state & _KEEP_AT_SETTLEMENT) | uint256(Status.Refunded);
        // A lock never outlives the deadline, so any remaining lock has lapsed.
        if (_lockDeadlineIn(state) != 0) _slash(requestId, request);
        uint256 reward = _rewardIn(state);
        address requester = request.requester;
        _owed[requester] += reward;
        totalEscrowed -= reward;
        totalOwed += reward;
        emit RequestRefunded(requestId, requester, reward);
    }

    /// @notice Slashes a lapsed lock of an open request: its stake is credited to the requester and
    ///         the request can be locked or fulfilled by anyone again. Anyone may call.
    /// @param requestId An open request whose lock deadline has passed.
    function slashLock(uint256 requestId) external {
        (StoredRequest storage request, uint256 state) = _openRequest(requestId);
        uint256 lockDeadline = _lockDeadlineIn(state);
        if (lockDeadline == 0) revert InferenceMarketNotLocked(requestId);
        if (block.timestamp <= lockDeadline) revert InferenceMarketLockNotLapsed(requestId);
        request.state = state & ~(_UINT40 << _LOCK_SHIFT);
        _slash(requestId, request);
    }

    /// @notice Sends the caller everything it is owed.
    function withdraw() external nonReentrant {
        uint256 amount = _owed[msg.sender];
        if (amount == 0) revert InferenceMarketNothingOwed();
        _owed[msg.sender] = 0;
        totalOwed -= amount;
        emit Withdrawn(msg.sender, amount);
        bool success;
        assembly ("memory-safe") {
            // No return data is copied: a recipient cannot make the market pay for it.
            success := call(gas(), caller(), amount, 0, 0, 0, 0)
        }
        if (!success) revert InferenceMarketTransferFailed();
    }

    /// @notice The id of the registration of `modelId` by `registrant`.
    /// @param registrant The account that registered (or will register) the model.
    /// @param modelId The bundle's model id.
    /// @return `keccak256(abi.encode(registrant, modelId))`.
    function registrationIdOf(address registrant, bytes32 modelId) public pure returns (bytes32) {
        return keccak256(abi.encode(registrant, modelId));
    }

    /// @notice The commitment a request must carry for these input instances.
    /// @param inputInstances The input part of the public instances, in circuit order.
    /// @return commitment `keccak256(abi.encodePacked(inputInstances))`.
    function inputCommitmentOf(uint256[] calldata inputInstances) public pure returns (bytes32 commitment) {
        // keccak256(abi.encodePacked(inputInstances)), hashed in scratch memory past the free
        // memory pointer: a batch hashes one slice per request and allocates nothing for it.
        assembly ("memory-safe") {
            let data := mload(0x40)
            let size := shl(5, inputInstances.length)
            calldatacopy(data, inputInstances.offset, size)
            commitment := keccak256(data, size)
        }
    }

    /// @notice A model's registration (all zero when unknown).
    /// @param registrationId The registration (`registrationIdOf`).
    /// @return The model.
    function getModel(bytes32 registrationId) external view returns (Model memory) {
        return _models[registrationId];
    }

    /// @notice The hash of a model's public-instance layout and scales, for consumers to pin along
    ///         with the verifier's code hash: the genuine verifier registered with another layout
    ///         (say a smaller `inputCount`, leaving inputs uncommitted) proves something else.
    /// @param registrationId A registration.
    /// @return `keccak256(abi.encode(instanceCount, inputOffset, inputCount, outputOffset,
    ///         outputCount, batchSize, inputScale, outputScale))`, with the `ModelConfig` types
    ///         (six `uint32`, two `uint8`).
    function layoutHashOf(bytes32 registrationId) external view returns (bytes32) {
        ModelConfig storage c = _models[registrationId].config;
        if (c.verifier == address(0)) revert InferenceMarketUnknownModel(registrationId);
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

    /// @notice A request (all zero, status `None`, when unknown).
    /// @param requestId The request.
    /// @return request The request.
    function getRequest(uint256 requestId) external view returns (Request memory request) {
        StoredRequest storage stored = _requests[requestId];
        uint256 state = stored.state;
        Status status = Status(state & _STATUS_MASK);
        uint256 format = (state >> _FORMAT_SHIFT) & 3;
        request.registrationId = _registrationAt[_indexIn(state)];
        request.requester = stored.requester;
        request.consumer = stored.consumer;
        // forge-lint: disable-next-line(unsafe-typecast) 40 bits
        request.deadline = uint64(_deadlineIn(state));
        request.status = status;
        request.outputsPacked = format == _OUTPUTS_INLINE || format == _OUTPUTS_PAIRS;
        request.reward = _rewardIn(state);
        request.inputCommitment = stored.inputCommitment;
        request.lockedBy = stored.lockedBy;
        // After settlement these bits hold outputs; the lock was cleared.
        // forge-lint: disable-next-line(unsafe-typecast) 40 bits
        if (status == Status.Open) request.lockDeadline = uint64(_lockDeadlineIn(state));
        request.lockStake = stored.lockStake;
    }

    /// @notice The proven outputs of a fulfilled request (empty otherwise), signed fixed point
    ///         with the model's `outputScale`.
    /// @param requestId The request.
    /// @return outputs The outputs, `outputCount` of the request's model.
    function outputsOf(uint256 requestId) external view returns (int256[] memory outputs) {
        uint256 state = _requests[requestId].state;
        if (_statusIn(state) != Status.Fulfilled) return outputs;
        uint256 count = _models[_registrationAt[_indexIn(state)]].config.outputCount;
        outputs = new int256[](count);
        uint256 format = (state >> _FORMAT_SHIFT) & 3;
        mapping(uint256 => uint256) storage stored = _outputs[requestId];
        if (format == _OUTPUTS_INLINE) {
            uint256 width = _INLINE_BITS / count;
            for (uint256 i; i < outputs.length; ++i) {
                // Output i is bits [176 + i * width, 176 + (i + 1) * width): move its top bit to bit
                // 255, then shift back arithmetically to sign-extend it.
                // forge-lint: disable-next-line(unsafe-typecast) the bits, reinterpreted as signed
                outputs[i] = int256(state << (256 - _LOCK_SHIFT - (i + 1) * width)) >> (256 - width);
            }
        } else if (format == _OUTPUTS_PAIRS) {
            for (uint256 i; i < outputs.length; ++i) {
                uint256 word = stored[i >> 1];
                // forge-lint: disable-next-line(unsafe-typecast) a half word is an int128, sign-extended
                outputs[i] = int128(uint128(i & 1 == 0 ? word : word >> 128));
            }
        } else {
            for (uint256 i; i < outputs.length; ++i) {
                // forge-lint: disable-next-line(unsafe-typecast) the bits of the int256 stored
                outputs[i] = int256(stored[i]);
            }
        }
    }

    /// @notice What an account can withdraw.
    /// @param account The account.
    /// @return The amount in wei.
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    function _checkLayout(ModelConfig calldata config) private pure {
        // The regions of all `batchSize` slots; uint256 arithmetic: uint32 operands cannot overflow.
        uint256 slots = config.batchSize;
        uint256 inputEnd = uint256(config.inputOffset) + slots * config.inputCount;
        uint256 outputEnd = uint256(config.outputOffset) + slots * config.outputCount;
        bool disjoint = inputEnd <= config.outputOffset || outputEnd <= config.inputOffset;
        if (
            config.inputCount == 0 || config.outputCount == 0 || config.batchSize == 0
                || inputEnd > config.instanceCount || outputEnd > config.instanceCount || !disjoint
        ) revert InferenceMarketBadLayout();
    }

    function _checkLockTerms(ModelConfig calldata config) private pure {
        // A zero stake makes locking free (a griefer could hold every request); a lock of a few
        // seconds lapses before its holder's fulfil is mined (the stake is then slashed); an
        // unbounded duration lets a lock outlive any useful deadline.
        uint32 duration = config.lockDuration;
        if (config.minLockStake == 0 || duration < MIN_LOCK_DURATION || duration > MAX_LOCK_DURATION) {
            revert InferenceMarketBadLockTerms();
        }
    }

    function _onlyModelOwner(bytes32 registrationId) private view returns (Model storage model) {
        model = _models[registrationId];
        if (model.config.verifier == address(0)) revert InferenceMarketUnknownModel(registrationId);
        if (model.owner != msg.sender) revert InferenceMarketNotModelOwner(registrationId, msg.sender);
    }

    function _activeModel(bytes32 registrationId) private view returns (Model storage model) {
        model = _models[registrationId];
        if (model.config.verifier == address(0)) revert InferenceMarketUnknownModel(registrationId);
        if (model.paused) revert InferenceMarketModelPaused(registrationId);
    }

    /// @dev The request and its state word; reverts unless it is open.
    function _openRequest(uint256 requestId) private view returns (StoredRequest storage request, uint256 state) {
        request = _requests[requestId];
        state = request.state;
        if (_statusIn(state) != Status.Open) revert InferenceMarketRequestNotOpen(requestId);
    }

    function _statusIn(uint256 state) private pure returns (Status) {
        return Status(state & _STATUS_MASK);
    }

    function _deadlineIn(uint256 state) private pure returns (uint256) {
        return (state >> _DEADLINE_SHIFT) & _UINT40;
    }

    function _indexIn(uint256 state) private pure returns (uint256) {
        return (state >> _INDEX_SHIFT) & _UINT32;
    }

    function _rewardIn(uint256 state) private pure returns (uint256) {
        return (state >> _REWARD_SHIFT) & _UINT96;
    }

    /// @dev Only meaningful while the request is open (0: unlocked).
    function _lockDeadlineIn(uint256 state) private pure returns (uint256) {
        return (state >> _LOCK_SHIFT) & _UINT40;
    }

    /// @dev Credits a lapsed lock's stake to the requester; the caller clears the lock deadline in
    ///      the state word.
    function _slash(uint256 requestId, StoredRequest storage request) private {
        address provider = request.lockedBy;
        uint256 stake = _releaseLock(request);
        _owed[request.requester] += stake;
        emit LockSlashed(requestId, provider, stake);
    }

    /// @dev Clears the lock's holder and stake and moves the stake from escrow to owed; the caller
    ///      credits it and clears the lock deadline in the state word.
    function _releaseLock(StoredRequest storage request) private returns (uint256 stake) {
        stake = request.lockStake;
        request.lockedBy = address(0);
        request.lockStake = 0;
        totalEscrowed -= stake;
        totalOwed += stake;
    }

    /// @dev A request may be fulfilled now by the caller: not past its deadline, and not under
    ///      another provider's active lock.
    function _checkTerms(uint256 requestId, StoredRequest storage request, uint256 state) private view {
        if (block.timestamp > _deadlineIn(state)) {
            revert InferenceMarketDeadlinePassed(requestId);
        }
        // The holder is read only for a lock still active: an unlocked request reads no lock word.
        if (block.timestamp <= _lockDeadlineIn(state)) {
            address lockedBy = request.lockedBy;
            if (lockedBy != msg.sender) revert InferenceMarketRequestLocked(requestId, lockedBy);
        }
    }

    function _checkInstanceCount(ModelConfig storage config, uint256[] calldata instances) private view {
        if (instances.length != config.instanceCount) {
            revert InferenceMarketInstanceCount(config.instanceCount, instances.length);
        }
    }

    /// @dev The `count` input instances from `start` (one slot's) hash to the request's commitment
    ///      (the slot and the instance count are checked by the caller).
    function _checkSlotInputs(
        uint256 requestId,
        StoredRequest storage request,
        uint256 start,
        uint256 count,
        uint256[] calldata instances
    ) private view {
        if (inputCommitmentOf(instances[start:start + count]) != request.inputCommitment) {
            revert InferenceMarketInputMismatch(requestId);
        }
    }

    /// @dev The registration of a batch (its first request's, open) and its index; reverts on an
    ///      empty batch or lists of different lengths.
    function _batchRegistration(uint256[] calldata requestIds, uint256[] calldata slots)
        private
        view
        returns (bytes32 registrationId, uint256 index)
    {
        uint256 count = requestIds.length;
        if (count == 0) revert InferenceMarketEmptyBatch();
        if (slots.length != count) revert InferenceMarketBatchLengthMismatch(count, slots.length);
        (, uint256 state) = _openRequest(requestIds[0]);
        index = _indexIn(state);
        registrationId = _registrationAt[index];
    }

    /// @dev Every check of `fulfillBatch` before the proof: see its NatSpec. `index` is the
    ///      registration index of the batch's first request.
    function _checkBatch(
        uint256 index,
        ModelConfig storage config,
        uint256[] calldata requestIds,
        uint256[] calldata slots,
        uint256[] calldata instances
    ) private view {
        // The layout is read once, not once per request.
        uint256 batchSize = config.batchSize;
        uint256 inputOffset = config.inputOffset;
        uint256 inputCount = config.inputCount;
        // One bit per slot: distinct slots in any order, in linear time.
        uint256[] memory used = new uint256[]((batchSize + 255) >> 8);
        for (uint256 i; i < requestIds.length; ++i) {
            uint256 requestId = requestIds[i];
            (StoredRequest storage request, uint256 state) = _openRequest(requestId);
            if (_indexIn(state) != index) {
                revert InferenceMarketModelMismatch(requestId, _registrationAt[_indexIn(state)]);
            }
            _checkTerms(requestId, request, state);
            uint256 slot = slots[i];
            _claimSlot(used, slot, batchSize);
            _checkSlotInputs(requestId, request, inputOffset + slot * inputCount, inputCount, instances);
        }
    }

    /// @dev Marks `slot` used in the bitmap `used`; reverts if it is out of range or already used.
    function _claimSlot(uint256[] memory used, uint256 slot, uint256 batchSize) private pure {
        if (slot >= batchSize) revert InferenceMarketSlotOutOfRange(slot, batchSize);
        // forge-lint: disable-next-line(incorrect-shift) one bit at position slot % 256
        uint256 bit = 1 << (slot & 255);
        uint256 word = used[slot >> 8];
        if (word & bit != 0) revert InferenceMarketDuplicateSlot(slot);
        used[slot >> 8] = word | bit;
    }

    /// @dev The effects of `fulfillBatch`: settles each request (`_settle`), then credits the
    ///      caller and moves the escrow in one write each.
    function _settleBatch(
        bytes32 registrationId,
        ModelConfig storage config,
        uint256[] calldata requestIds,
        uint256[] calldata slots,
        uint256[] calldata instances
    ) private returns (int256[][] memory outputs) {
        outputs = new int256[][](requestIds.length);
        // Read once: `_checkBatch` has already checked every request is of this registration.
        OutputRegion memory region = OutputRegion(registrationId, config.outputOffset, config.outputCount);
        uint256 payout; // rewards and own stakes, credited to the caller
        uint256 released; // rewards and every stake leaving escrow
        for (uint256 i; i < requestIds.length; ++i) {
            (uint256 credited, uint256 freed, int256[] memory slotOutputs) =
                _settle(region, requestIds[i], slots[i], instances);
            payout += credited;
            released += freed;
            outputs[i] = slotOutputs;
        }
        _owed[msg.sender] += payout;
        totalEscrowed -= released;
        totalOwed += released;
    }

    /// @dev Marks one request fulfilled as slot `slot` (re-checking it is still open, so an id
    ///      listed twice in a batch reverts), releases its lock, stores and emits its outputs, all
    ///      in one write of its state word when the outputs fit there. Returns what the caller is
    ///      to be credited (the reward, plus the stake of its own lock) and what leaves escrow; a
    ///      lapsed foreign lock's stake goes to the requester here.
    function _settle(OutputRegion memory region, uint256 requestId, uint256 slot, uint256[] calldata instances)
        private
        returns (uint256 credited, uint256 released, int256[] memory outputs)
    {
        (StoredRequest storage request, uint256 state) = _openRequest(requestId);
        uint256 reward = _rewardIn(state);
        credited = reward;
        released = reward;
        if (_lockDeadlineIn(state) != 0) {
            address lockedBy = request.lockedBy;
            uint256 stake = request.lockStake;
            request.lockedBy = address(0);
            request.lockStake = 0;
            released += stake;
            if (lockedBy == msg.sender) {
                credited += stake;
            } else {
                _owed[request.requester] += stake;
                emit LockSlashed(requestId, lockedBy, stake);
            }
        }
        uint256 outputCount = region.outputCount;
        uint256 format;
        uint256 inlined;
        (outputs, format, inlined) = _decodeOutputs(region.outputOffset + slot * outputCount, outputCount, instances);
        // The status, the outputs' format and any inline outputs in one write; the lock deadline goes.
        request.state = (state & _KEEP_AT_SETTLEMENT) | uint256(Status.Fulfilled) | (format << _FORMAT_SHIFT)
            | (inlined << _LOCK_SHIFT);
        if (format != _OUTPUTS_INLINE) _storeOutputWords(requestId, outputs, format);
        emit InferenceFulfilled(requestId, region.registrationId, msg.sender, reward, outputs);
    }

    function _verify(uint256 requestId, Model storage model, bytes calldata proof, uint256[] calldata instances)
        private
        view
    {
        address verifier = model.config.verifier;
        if (verifier.codehash != model.verifierCodeHash) revert InferenceMarketVerifierCodeChanged(verifier);
        // Re-encode canonically: the generated verifier reads its arguments through the ABI offsets,
        // and a caller must not be able to smuggle in differently laid-out calldata.
        bytes memory data = abi.encodeCall(IHalo2Verifier.verifyProof, (proof, instances));
        bool valid;
        assembly ("memory-safe") {
            let success := staticcall(gas(), verifier, add(data, 0x20), mload(data), 0, 0x20)
            valid := and(success, and(iszero(lt(returndatasize(), 0x20)), eq(mload(0), 1)))
            // Free the encoded call (nothing refers to it now): the memory the settlement
            // allocates next reuses it rather than growing memory past proof and instances.
            mstore(0x40, data)
        }
        if (!valid) revert InferenceMarketProofRejected(requestId);
    }

    /// @dev Decodes `count` output instances from `offset` as signed numbers, and chooses how
    ///      they are stored: inline in the state word (`inlined`, `_INLINE_BITS / count` bits
    ///      each, two's complement) when every output fits that width; else two int128 per word
    ///      when all fit in int128; else one int256 per word.
    function _decodeOutputs(uint256 offset, uint256 count, uint256[] calldata instances)
        private
        pure
        returns (int256[] memory outputs, uint256 format, uint256 inlined)
    {
        outputs = new int256[](count);
        uint256 width = _INLINE_BITS / count; // count >= 1 (`_checkLayout`); 0 when more than 80
        // forge-lint: disable-next-line(unsafe-typecast, incorrect-shift) width <= 80
        int256 inlineMax = width == 0 ? -1 : int256((1 << (width - 1)) - 1);
        bool fitsInline = width != 0;
        bool pairs = true;
        for (uint256 i; i < count; ++i) {
            // The verifier checked every instance is below FIELD_MODULUS; the upper half of the
            // field encodes negative numbers.
            uint256 felt = instances[offset + i];
            // forge-lint: disable-next-line(unsafe-typecast) both operands are below 2**254
            int256 value = felt > (FIELD_MODULUS - 1) / 2 ? -int256(FIELD_MODULUS - felt) : int256(felt);
            outputs[i] = value;
            if (value > inlineMax || value < -inlineMax - 1) {
                fitsInline = false;
            } else {
                // forge-lint: disable-next-line(unsafe-typecast, incorrect-shift) two's complement, masked to width
                inlined |= (uint256(value) & ((1 << width) - 1)) << (i * width);
            }
            if (value > type(int128).max || value < type(int128).min) pairs = false;
        }
        if (fitsInline) return (outputs, _OUTPUTS_INLINE, inlined);
        return (outputs, pairs ? _OUTPUTS_PAIRS : _OUTPUTS_WORDS, 0);
    }

    /// @dev Stores outputs that do not fit in the state word in `_outputs`, as `format` says.
    function _storeOutputWords(uint256 requestId, int256[] memory outputs, uint256 format) private {
        mapping(uint256 => uint256) storage stored = _outputs[requestId];
        uint256 count = outputs.length;
        if (format == _OUTPUTS_PAIRS) {
            for (uint256 i; i < count; i += 2) {
                // forge-lint: disable-next-line(unsafe-typecast) pairs: every output fits in int128
                uint256 word = uint128(int128(outputs[i]));
                // forge-lint: disable-next-line(unsafe-typecast) pairs: every output fits in int128
                if (i + 1 < count) word |= uint256(uint128(int128(outputs[i + 1]))) << 128;
                // A zero word costs no fresh slot.
                if (word != 0) stored[i >> 1] = word;
            }
        } else {
            for (uint256 i; i < count; ++i) {
                // forge-lint: disable-next-line(unsafe-typecast) the bits of the int256, read back as such
                if (outputs[i] != 0) stored[i] = uint256(outputs[i]);
            }
        }
    }

    function _callConsumers(
        bytes32 registrationId,
        uint8 outputScale,
        uint256[] calldata requestIds,
        int256[][] memory outputs
    ) private {
        for (uint256 i; i < requestIds.length; ++i) {
            uint256 requestId = requestIds[i];
            StoredRequest storage request = _requests[requestId];
            // The state word is warm (settled above); the consumer is read only when there is one.
            if (request.state & _HAS_CONSUMER != 0) {
                _callConsumer(requestId, request.consumer, registrationId, outputs[i], outputScale);
            }
        }
    }

    function _callConsumer(
        uint256 requestId,
        address consumer,
        bytes32 registrationId,
        int256[] memory outputs,
        uint8 outputScale
    ) private {
        bytes memory data = abi.encodeCall(
            IInferenceConsumer.onInferenceResult, (requestId, registrationId, outputs, outputScale)
        );
        // EIP-150 forwards at most 63/64 of the remaining gas: without this check a provider could
        // send just enough gas to settle and starve the callback.
        if (gasleft() < CALLBACK_GAS_LIMIT * 64 / 63 + CALLBACK_GAS_MARGIN) revert InferenceMarketInsufficientGas();
        bool success;
        assembly ("memory-safe") {
            // Return data is ignored and never copied: a consumer cannot make settlement fail.
            success := call(CALLBACK_GAS_LIMIT, consumer, 0, add(data, 0x20), mload(data), 0, 0)
        }
        if (!success) emit ConsumerCallbackFailed(requestId, consumer);
    }
}
