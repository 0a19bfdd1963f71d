// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// @notice The part of ERC-20 the staking contract calls.
interface IStakeToken {
    /// @notice ERC-20 `transfer`.
    function transfer(address to, uint256 value) external returns (bool);
    /// @notice ERC-20 `transferFrom`.
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title Staking: membership of the Lit network, epoch by epoch
/// @notice Operators stake tokens, ask to join or leave, and vote to kick misbehaving members. At
///         the end of an epoch the next validator set is locked; the current and incoming members
///         reshare the root keys off chain and each signals readiness with the hash of the root
///         public keys; once a threshold of the locked set agrees on one hash the epoch advances.
///         A reshare that does not finish in time is abandoned and the current epoch goes on.
/// @dev Behaviour and revert reasons follow `contracts/SPEC.md` exactly: the node's embedded
///      backend mirrors them and one conformance suite runs against both. Sets are small (a few
///      dozen validators), so they are kept as arrays and scanned.
contract Staking {
    /// @notice A registered validator: its stake account, its party id in the threshold
    ///         protocols and how peers reach and authenticate it.
    struct Validator {
        /// The staking account.
        address staker;
        /// The party id, assigned at the first request to join (counting from 1, never reused).
        uint32 partyId;
        /// Where its node listens.
        string url;
        /// The node's identity key (signs its messages to peers).
        bytes32 identityKey;
        /// The node's sealing key (peers encrypt private protocol payloads to it).
        bytes32 sealKey;
        /// The node's DKG key, a 33-byte SEC1-compressed secp256k1 point.
        bytes dkgKey;
    }

    /// @notice Active: members may join, leave and stake; Locked: the next set is fixed and the
    ///         reshare is running.
    enum State {
        Active,
        Locked
    }

    /// @notice The staked token.
    address public immutable token;
    /// @notice The stake needed to request to join.
    uint256 public immutable minStake;
    /// @notice Seconds from the start of an epoch until anyone may lock the next set.
    uint64 public epochLength;
    /// @notice Seconds after the lock until anyone may abandon the reshare.
    uint64 public immutable reshareTimeout;
    /// @notice The part of its stake (in percent) a kicked validator loses.
    uint8 public immutable kickSlashPercent;
    /// @notice The deployer: may lock early (and alone at genesis), abandon early and set the
    ///         epoch length.
    address public immutable admin;

    /// @notice The current epoch (0 before genesis: no validators).
    uint64 public epoch;
    /// @notice Active or Locked.
    State public state;
    /// @notice When the current epoch started (or the last reshare was abandoned).
    uint64 public epochStart;
    /// @notice When the next set was locked (meaningful while Locked).
    uint64 public lockedAt;
    /// @notice The current set's threshold.
    uint32 public threshold;
    /// @notice The hash of the root public keys, fixed at genesis.
    bytes32 public rootKeysHash;
    /// @notice Tokens taken from kicked validators (they stay in this contract).
    uint256 public slashed;
    /// @notice Each account's stake.
    mapping(address => uint256) public stakeOf;
    /// @notice Votes to kick a target in an epoch.
    mapping(uint64 => mapping(address => uint32)) public kickVotes;

    mapping(address => Validator) private records;
    uint32 private lastPartyId;
    /// the last staker that registered an identity key (it holds the key while its record has it)
    mapping(bytes32 => address) private identityKeyHolder;

    address[] private current;
    mapping(address => bool) private isCurrent;
    mapping(address => bool) private leaving;
    mapping(address => bool) private kicked;
    address[] private pending;
    mapping(address => bool) private isPending;
    address[] private locked;
    mapping(address => bool) private inLocked;
    uint32 private lockedThreshold;
    /// Counts the locks: the readiness signals of one handover are kept under its lock's number,
    /// so an abandoned handover's signals never count for the next one.
    uint64 private handover;
    mapping(uint64 => mapping(bytes32 => uint32)) private readyVotes;
    mapping(uint64 => mapping(address => bool)) private signalled;
    mapping(uint64 => mapping(address => mapping(address => bool))) private kickVoted;

    /// @notice `staker` added `amount` to its stake.
    event Staked(address indexed staker, uint256 amount);
    /// @notice `staker` asked to join the next set (or cancelled its leave) as `partyId`.
    event JoinRequested(address indexed staker, uint32 partyId);
    /// @notice `staker` asked to leave (or withdrew its request to join).
    event LeaveRequested(address indexed staker);
    /// @notice `staker` took `amount` of its stake back.
    event Withdrawn(address indexed staker, uint256 amount);
    /// @notice `voter` voted to kick `target` in the current epoch.
    event KickVoted(address indexed voter, address indexed target);
    /// @notice `target` was kicked (excluded from the next lock) and lost `slashedAmount`.
    event Kicked(address indexed target, uint256 slashedAmount);
    /// @notice The set of `count` validators for `nextEpoch` is locked: the reshare starts.
    event ValidatorsLocked(uint64 indexed nextEpoch, uint32 count);
    /// @notice `staker` holds its shares for `nextEpoch` of the root keys hashing to `rootKeysHash`.
    event ReadySignalled(uint64 indexed nextEpoch, address indexed staker, bytes32 rootKeysHash);
    /// @notice The locked set is now the current set of `epoch`.
    event EpochAdvanced(uint64 indexed epoch);
    /// @notice The reshare towards `nextEpoch` was abandoned; the current epoch goes on.
    event ReshareAbandoned(uint64 indexed nextEpoch);
    /// @notice The admin set the epoch length.
    event EpochLengthSet(uint64 epochLength);

    /// @param token_ The staked ERC-20 token.
    /// @param minStake_ The stake needed to request to join.
    /// @param epochLength_ Seconds from an epoch's start until anyone may lock the next set.
    /// @param reshareTimeout_ Seconds after a lock until anyone may abandon the reshare.
    /// @param kickSlashPercent_ The part of its stake a kicked validator loses (0 to 100).
    constructor(
        address token_,
        uint256 minStake_,
        uint64 epochLength_,
        uint64 reshareTimeout_,
        uint8 kickSlashPercent_
    ) {
        require(kickSlashPercent_ <= 100, "bad slash percent");
        token = token_;
        minStake = minStake_;
        epochLength = epochLength_;
        reshareTimeout = reshareTimeout_;
        kickSlashPercent = kickSlashPercent_;
        admin = msg.sender;
        epochStart = uint64(block.timestamp);
    }

    // ---- staking ------------------------------------------------------------------------------

    /// @notice Moves `amount` tokens from the caller (who approved this contract) to its stake.
    function stake(uint256 amount) external {
        require(amount != 0, "zero amount");
        _callToken(abi.encodeCall(IStakeToken.transferFrom, (msg.sender, address(this), amount)));
        stakeOf[msg.sender] += amount;
        emit Staked(msg.sender, amount);
    }

    /// @notice Takes `amount` of the caller's stake back; only outside the current, pending and
    ///         locked sets.
    function withdraw(uint256 amount) external {
        require(
            !isCurrent[msg.sender] && !isPending[msg.sender] && !inLocked[msg.sender],
            "still a validator"
        );
        require(amount <= stakeOf[msg.sender], "insufficient stake");
        stakeOf[msg.sender] -= amount;
        _callToken(abi.encodeCall(IStakeToken.transfer, (msg.sender, amount)));
        emit Withdrawn(msg.sender, amount);
    }

    // ---- membership ---------------------------------------------------------------------------

    /// @notice Asks to join the next set with these contact details and keys, or, for a current
    ///         member that asked to leave, cancels the leave. The first request assigns the
    ///         caller's party id; later ones keep it and update the details.
    /// @param url Where the node listens.
    /// @param identityKey The node's identity key (no other staker's record may have it).
    /// @param sealKey The node's sealing key.
    /// @param dkgKey The node's 33-byte compressed secp256k1 DKG key.
    function requestToJoin(string calldata url, bytes32 identityKey, bytes32 sealKey, bytes calldata dkgKey)
        external
    {
        require(stakeOf[msg.sender] >= minStake, "stake below minimum");
        bool member = isCurrent[msg.sender];
        require(!(member && !leaving[msg.sender]) && !isPending[msg.sender], "already a validator");
        address holder = identityKeyHolder[identityKey];
        require(
            holder == address(0) || holder == msg.sender || records[holder].identityKey != identityKey,
            "identity key in use"
        );
        require(dkgKey.length == 33, "bad dkg key");
        require(state == State.Active, "locked");

        Validator storage v = records[msg.sender];
        if (v.partyId == 0) {
            lastPartyId += 1;
            v.partyId = lastPartyId;
            v.staker = msg.sender;
        }
        v.url = url;
        v.identityKey = identityKey;
        v.sealKey = sealKey;
        v.dkgKey = dkgKey;
        identityKeyHolder[identityKey] = msg.sender;

        if (member) {
            leaving[msg.sender] = false;
        } else {
            pending.push(msg.sender);
            isPending[msg.sender] = true;
        }
        emit JoinRequested(msg.sender, v.partyId);
    }

    /// @notice Leaves at the next lock (a current member) or withdraws a request to join.
    function requestToLeave() external {
        require(isCurrent[msg.sender] || isPending[msg.sender], "not a validator");
        require(state == State.Active, "locked");
        if (isPending[msg.sender]) {
            isPending[msg.sender] = false;
            _remove(pending, msg.sender);
        } else {
            leaving[msg.sender] = true;
        }
        emit LeaveRequested(msg.sender);
    }

    /// @notice Votes to kick `target` from the next set. When the target's votes in this epoch
    ///         reach the current threshold it is kicked (excluded from the next lock; a member of
    ///         an already locked set stays in it) and loses `kickSlashPercent` of its stake.
    function voteToKick(address target) external {
        require(isCurrent[msg.sender], "not a current validator");
        require(isCurrent[target], "target not a current validator");
        require(!kickVoted[epoch][target][msg.sender], "already voted");
        kickVoted[epoch][target][msg.sender] = true;
        uint32 votes = kickVotes[epoch][target] + 1;
        kickVotes[epoch][target] = votes;
        emit KickVoted(msg.sender, target);
        if (!kicked[target] && votes >= threshold) {
            kicked[target] = true;
            uint256 amount = stakeOf[target] * kickSlashPercent / 100;
            stakeOf[target] -= amount;
            slashed += amount;
            emit Kicked(target, amount);
        }
    }

    // ---- epochs -------------------------------------------------------------------------------

    /// @notice Fixes the next set (see `nextValidators`) and starts the reshare. Anyone may call
    ///         it once the epoch is over, the admin at any time (and only the admin at genesis).
    function lockValidatorsForNextEpoch() external {
        require(state == State.Active, "locked");
        require(
            msg.sender == admin || (epoch > 0 && block.timestamp >= uint256(epochStart) + epochLength),
            "epoch not over"
        );
        address[] memory next = _nextSet();
        require(next.length > 0, "empty next set");
        for (uint256 i = 0; i < next.length; i++) {
            locked.push(next[i]);
            inLocked[next[i]] = true;
        }
        lockedThreshold = _threshold(next.length);
        handover += 1;
        lockedAt = uint64(block.timestamp);
        state = State.Locked;
        emit ValidatorsLocked(epoch + 1, uint32(next.length));
    }

    /// @notice A member of the locked set holds its shares for `nextEpoch` of the root keys whose
    ///         public keys hash to `rootKeysHash` (after genesis: the stored hash).
    function signalReady(uint64 nextEpoch, bytes32 rootKeysHash_) external {
        require(state == State.Locked, "not locked");
        require(nextEpoch == epoch + 1, "wrong epoch");
        require(inLocked[msg.sender], "not in next set");
        require(!signalled[handover][msg.sender], "already signalled");
        require(epoch == 0 || rootKeysHash_ == rootKeysHash, "wrong key set");
        signalled[handover][msg.sender] = true;
        readyVotes[handover][rootKeysHash_] += 1;
        emit ReadySignalled(nextEpoch, msg.sender, rootKeysHash_);
    }

    /// @notice Makes the locked set current once a threshold of it signalled `rootKeysHash_`.
    ///         At genesis this fixes the network's root keys hash.
    function advanceEpoch(bytes32 rootKeysHash_) external {
        require(state == State.Locked, "not locked");
        uint64 next = epoch + 1;
        require(readyVotes[handover][rootKeysHash_] >= lockedThreshold, "not enough ready");

        for (uint256 i = 0; i < current.length; i++) {
            address a = current[i];
            if (!inLocked[a]) {
                isCurrent[a] = false;
                leaving[a] = false;
                kicked[a] = false;
            }
        }
        for (uint256 i = 0; i < pending.length; i++) {
            isPending[pending[i]] = false;
        }
        delete pending;
        for (uint256 i = 0; i < locked.length; i++) {
            isCurrent[locked[i]] = true;
            inLocked[locked[i]] = false;
        }
        current = locked;
        delete locked;
        threshold = lockedThreshold;
        lockedThreshold = 0;
        if (epoch == 0) {
            rootKeysHash = rootKeysHash_;
        }
        epoch = next;
        epochStart = uint64(block.timestamp);
        state = State.Active;
        emit EpochAdvanced(next);
    }

    /// @notice Abandons a reshare that did not finish: the current epoch goes on (and lasts a
    ///         full epoch length again); joiners and leavers stay pending; readiness signalled for
    ///         the abandoned handover never counts for the next one. Anyone may call it after the timeout, the admin
    ///         at any time.
    function abandonReshare() external {
        require(state == State.Locked, "not locked");
        require(
            msg.sender == admin || block.timestamp >= uint256(lockedAt) + reshareTimeout,
            "reshare not timed out"
        );
        for (uint256 i = 0; i < locked.length; i++) {
            inLocked[locked[i]] = false;
        }
        delete locked;
        lockedThreshold = 0;
        state = State.Active;
        epochStart = uint64(block.timestamp);
        emit ReshareAbandoned(epoch + 1);
    }

    /// @notice Sets the epoch length (admin only).
    function setEpochLength(uint64 epochLength_) external {
        require(msg.sender == admin, "not admin");
        epochLength = epochLength_;
        emit EpochLengthSet(epochLength_);
    }

    // ---- views --------------------------------------------------------------------------------

    /// @notice Whether `a` is a member of the current set (the validators of `epoch`).
    /// @param a The staker to look up.
    /// @return True if `a` is in the current set.
    function isValidator(address a) external view returns (bool) {
        return isCurrent[a];
    }

    /// @notice The current set, ordered by party id.
    function currentValidators() external view returns (Validator[] memory) {
        return _records(current);
    }

    /// @notice While Active: the current members not leaving or kicked plus the pending joiners;
    ///         while Locked: the locked set. Ordered by party id.
    function nextValidators() external view returns (Validator[] memory) {
        if (state == State.Locked) {
            return _records(locked);
        }
        return _records(_nextSet());
    }

    /// @notice How many members of the locked set signalled readiness for `nextEpoch` with
    ///         `hash` in the running handover (0 unless Locked and `nextEpoch` is `epoch + 1`).
    function readyCount(uint64 nextEpoch, bytes32 hash) external view returns (uint32) {
        if (state != State.Locked || nextEpoch != epoch + 1) {
            return 0;
        }
        return readyVotes[handover][hash];
    }

    /// @notice Whether `staker` signalled readiness for `nextEpoch` in the running handover
    ///         (false unless Locked and `nextEpoch` is `epoch + 1`).
    function hasSignalled(uint64 nextEpoch, address staker) external view returns (bool) {
        return state == State.Locked && nextEpoch == epoch + 1 && signalled[handover][staker];
    }

    /// @notice The threshold of the next set: of the locked set while Locked, else of
    ///         `nextValidators()`.
    function nextThreshold() external view returns (uint32) {
        if (state == State.Locked) {
            return lockedThreshold;
        }
        return _threshold(_nextSet().length);
    }

    // ---- internals ----------------------------------------------------------------------------

    /// T(n) = ceil(2n/3).
    function _threshold(uint256 n) private pure returns (uint32) {
        return uint32((2 * n + 2) / 3);
    }

    /// The next set while Active, ordered by party id.
    function _nextSet() private view returns (address[] memory set) {
        set = new address[](current.length + pending.length);
        uint256 n = 0;
        for (uint256 i = 0; i < current.length; i++) {
            address a = current[i];
            if (!leaving[a] && !kicked[a]) {
                set[n++] = a;
            }
        }
        for (uint256 i = 0; i < pending.length; i++) {
            set[n++] = pending[i];
        }
        assembly {
            mstore(set, n)
        }
        // insertion sort by party id (the sets are small)
        for (uint256 i = 1; i < n; i++) {
            address a = set[i];
            uint32 id = records[a].partyId;
            uint256 j = i;
            while (j > 0 && records[set[j - 1]].partyId > id) {
                set[j] = set[j - 1];
                j--;
            }
            set[j] = a;
        }
    }

    function _records(address[] memory stakers) private view returns (Validator[] memory out) {
        out = new Validator[](stakers.length);
        for (uint256 i = 0; i < stakers.length; i++) {
            out[i] = records[stakers[i]];
        }
    }

    function _remove(address[] storage list, address a) private {
        for (uint256 i = 0; i < list.length; i++) {
            if (list[i] == a) {
                list[i] = list[list.length - 1];
                list.pop();
                return;
            }
        }
    }

    /// Calls the token and requires success: a revert, a `false` or a missing contract are all
    /// "transfer failed".
    function _callToken(bytes memory data) private {
        (bool ok, bytes memory ret) = token.call(data);
        require(
            ok && token.code.length > 0 && (ret.length == 0 || (ret.length == 32 && uint256(bytes32(ret)) == 1)),
            "transfer failed"
        );
    }
}
