// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// @notice The part of ERC-20 the ledger calls.
interface ILedgerToken {
    /// @notice ERC-20 `transfer`.
    function transfer(address to, uint256 value) external returns (bool);
    /// @notice ERC-20 `transferFrom`.
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @notice The part of the staking contract the ledger reads.
interface ILedgerStaking {
    /// @notice Whether `a` is a member of the current validator set.
    function isValidator(address a) external view returns (bool);
}

/// @title Ledger: paying for the network
/// @notice Users deposit the staking token; the admin prices each product per unit and per node;
///         each node of the current set charges users for the requests it served, in batches
///         numbered per node from 1 that land once and in order; a payer lets a user spend from
///         its balance up to a total (and counts the user's requests per period, a limit the
///         nodes enforce when they serve); each node claims what it charged. A charge is never
///         more than its units at the current prices, nor more than the source balance or the
///         delegation's remainder: what those cannot cover is the charge's shortfall, the
///         node's loss. Withdrawals wait `withdrawDelay` so that nodes can settle first.
/// @dev Behaviour and revert reasons follow `contracts/SPEC.md` exactly: the node's embedded
///      backend mirrors them and one conformance suite runs against both. Products (the index
///      into every 5-element array): 0 decryption share, 1 PKP signature share, 2 action run,
///      3 action millisecond, 4 action host call; 0 to 2 are requests.
contract Ledger {
    /// @notice A payer's delegation to one user (all zero: none).
    struct Delegation {
        /// The most the user may spend from the payer's balance in all (0: no delegation).
        uint256 totalLimit;
        /// What the user spent so far.
        uint256 spent;
        /// The most requests per period (0: no limit); the nodes enforce it when they serve.
        uint32 requestsPerPeriod;
        /// The period, in seconds.
        uint64 period;
        /// When the stored period began (block timestamp).
        uint64 periodStart;
        /// Requests charged in the stored period (saturating).
        uint32 periodRequests;
    }

    /// @notice One user's charge in a node's batch.
    struct Charge {
        /// Who made the requests.
        address user;
        /// Who pays: the user itself, or a payer that delegated to it.
        address payer;
        /// Units served of each product.
        uint64[5] units;
        /// What the node asks (at most `units` at the current prices).
        uint256 amount;
        /// A digest of the ids of the requests charged (recorded for audits only).
        bytes32 requests;
    }

    /// @notice A pending withdrawal request.
    struct Withdrawal {
        /// The amount asked for (0: none pending).
        uint256 amount;
        /// When it was asked for (block timestamp).
        uint64 requestedAt;
    }

    /// @notice The token deposits are made in (the staking token).
    address public immutable token;
    /// @notice The staking contract whose current set may charge.
    address public immutable staking;
    /// @notice Seconds a withdrawal request waits before it can be paid.
    uint64 public immutable withdrawDelay;
    /// @notice The deployer: sets the prices.
    address public immutable admin;

    /// @notice Each user's (or payer's) deposit.
    mapping(address => uint256) public balanceOf;
    /// @notice The last batch each node settled (0 if none).
    mapping(address => uint64) public settledBatch;
    /// @notice What each node charged and has not claimed yet.
    mapping(address => uint256) public rewards;

    /// the price of one unit of each product, per node
    uint256[5] private unitPrices;
    /// each user's pending withdrawal
    mapping(address => Withdrawal) private withdrawals;
    /// payer => user => delegation
    mapping(address => mapping(address => Delegation)) private delegations;

    /// @notice The admin set the price of one unit of each product.
    event PricesSet(uint256[5] prices);
    /// @notice `user` deposited `amount`.
    event Deposited(address indexed user, uint256 amount);
    /// @notice `user` asked to withdraw `amount` after the delay (replacing an earlier request).
    event WithdrawRequested(address indexed user, uint256 amount);
    /// @notice `user` was paid `amount` of its pending withdrawal.
    event Withdrawn(address indexed user, uint256 amount);
    /// @notice `payer` let `user` spend up to `totalLimit` of its balance, counting at most
    ///         `requestsPerPeriod` requests per `period` seconds (`totalLimit` 0: removed).
    event Delegated(
        address indexed payer, address indexed user, uint256 totalLimit, uint32 requestsPerPeriod, uint64 period
    );
    /// @notice In its batch `batch`, `node` charged `user` (paying through `payer`) `charged`;
    ///         `shortfall` of what it asked could not be covered.
    event Charged(
        address indexed node,
        address indexed user,
        address payer,
        uint64 batch,
        uint256 charged,
        uint256 shortfall,
        bytes32 requests
    );
    /// @notice `node` was paid its rewards, `amount`.
    event RewardsClaimed(address indexed node, uint256 amount);

    /// @param token_ The token deposits are made in (the staking token).
    /// @param staking_ The staking contract whose current set may charge.
    /// @param withdrawDelay_ Seconds a withdrawal request waits before it can be paid.
    constructor(address token_, address staking_, uint64 withdrawDelay_) {
        token = token_;
        staking = staking_;
        withdrawDelay = withdrawDelay_;
        admin = msg.sender;
    }

    // ---- prices -------------------------------------------------------------------------------

    /// @notice Sets the price of one unit of each product, per node (admin only).
    /// @param prices_ The prices, indexed by product.
    function setPrices(uint256[5] calldata prices_) external {
        require(msg.sender == admin, "not admin");
        unitPrices = prices_;
        emit PricesSet(prices_);
    }

    /// @notice The price of one unit of each product, per node (all zero until set).
    /// @return The prices, indexed by product.
    function prices() external view returns (uint256[5] memory) {
        return unitPrices;
    }

    // ---- deposits -----------------------------------------------------------------------------

    /// @notice Moves `amount` tokens from the caller (who approved this contract) to its balance.
    function deposit(uint256 amount) external {
        require(amount != 0, "zero amount");
        _callToken(abi.encodeCall(ILedgerToken.transferFrom, (msg.sender, address(this), amount)));
        balanceOf[msg.sender] += amount;
        emit Deposited(msg.sender, amount);
    }

    /// @notice Asks to withdraw `amount` of the caller's balance once `withdrawDelay` has
    ///         passed; replaces any earlier request (and restarts the wait).
    function requestWithdraw(uint256 amount) external {
        require(amount != 0, "zero amount");
        require(amount <= balanceOf[msg.sender], "insufficient balance");
        withdrawals[msg.sender] = Withdrawal({amount: amount, requestedAt: uint64(block.timestamp)});
        emit WithdrawRequested(msg.sender, amount);
    }

    /// @notice Pays the caller's pending withdrawal once the delay is over: what the balance
    ///         still holds of it (charges made during the delay come first).
    function withdraw() external {
        Withdrawal memory w = withdrawals[msg.sender];
        require(w.amount != 0, "no withdrawal requested");
        require(block.timestamp >= uint256(w.requestedAt) + withdrawDelay, "withdrawal delay not over");
        uint256 balance = balanceOf[msg.sender];
        uint256 amount = w.amount < balance ? w.amount : balance;
        delete withdrawals[msg.sender];
        balanceOf[msg.sender] = balance - amount;
        _callToken(abi.encodeCall(ILedgerToken.transfer, (msg.sender, amount)));
        emit Withdrawn(msg.sender, amount);
    }

    /// @notice `user`'s pending withdrawal (zero if none).
    /// @return amount The amount asked for.
    /// @return requestedAt When it was asked for (block timestamp).
    function withdrawal(address user) external view returns (uint256 amount, uint64 requestedAt) {
        Withdrawal memory w = withdrawals[user];
        return (w.amount, w.requestedAt);
    }

    // ---- delegations --------------------------------------------------------------------------

    /// @notice Lets `user` spend up to `totalLimit` of the caller's balance, counting its
    ///         requests per `period` seconds against `requestsPerPeriod` (0: no limit). Replaces
    ///         any earlier delegation to `user` (nothing spent, a new period from now); a zero
    ///         `totalLimit` removes it.
    function delegate(address user, uint256 totalLimit, uint32 requestsPerPeriod, uint64 period) external {
        require(requestsPerPeriod == 0 || period != 0, "zero period");
        if (totalLimit == 0) {
            delete delegations[msg.sender][user];
        } else {
            delegations[msg.sender][user] = Delegation({
                totalLimit: totalLimit,
                spent: 0,
                requestsPerPeriod: requestsPerPeriod,
                period: period,
                periodStart: uint64(block.timestamp),
                periodRequests: 0
            });
        }
        emit Delegated(msg.sender, user, totalLimit, requestsPerPeriod, period);
    }

    /// @notice `payer`'s delegation to `user` (all zero if none). `periodStart` and
    ///         `periodRequests` are as last stored: once `periodStart + period` has passed, the
    ///         running period's count is 0.
    function delegation(address payer, address user) external view returns (Delegation memory) {
        return delegations[payer][user];
    }

    // ---- charges ------------------------------------------------------------------------------

    /// @notice Settles the caller's batch number `batch` (a current member's; batches land once
    ///         and in order, from 1). Each charge asks at most its units at the current prices
    ///         (else the whole batch is refused) and takes what the source balance, and for a
    ///         delegated user the delegation's remainder, can cover; the rest is its shortfall.
    ///         What is taken goes to the caller's rewards.
    function charge(uint64 batch, Charge[] calldata charges) external {
        require(ILedgerStaking(staking).isValidator(msg.sender), "not a validator");
        uint64 settled = settledBatch[msg.sender];
        require(batch > settled, "batch already settled");
        require(batch == settled + 1, "batch out of order");
        uint256 total = 0;
        for (uint256 i = 0; i < charges.length; i++) {
            uint256 charged = _charge(charges[i]);
            total += charged;
            Charge calldata c = charges[i];
            emit Charged(msg.sender, c.user, c.payer, batch, charged, c.amount - charged, c.requests);
        }
        rewards[msg.sender] += total;
        settledBatch[msg.sender] = batch;
    }

    /// @notice Pays the caller (a node) what it charged.
    function claimRewards() external {
        uint256 amount = rewards[msg.sender];
        require(amount != 0, "no rewards");
        rewards[msg.sender] = 0;
        _callToken(abi.encodeCall(ILedgerToken.transfer, (msg.sender, amount)));
        emit RewardsClaimed(msg.sender, amount);
    }

    // ---- internals ----------------------------------------------------------------------------

    /// Applies one charge and returns what it took.
    function _charge(Charge calldata c) private returns (uint256 charged) {
        uint256 cost = 0;
        for (uint256 i = 0; i < 5; i++) {
            cost += uint256(c.units[i]) * unitPrices[i];
        }
        require(c.amount <= cost, "charge above prices");

        if (c.payer == c.user) {
            uint256 balance = balanceOf[c.user];
            charged = c.amount < balance ? c.amount : balance;
            balanceOf[c.user] = balance - charged;
            return charged;
        }

        Delegation storage d = delegations[c.payer][c.user];
        if (d.totalLimit == 0) {
            return 0;
        }
        if (d.period > 0 && block.timestamp >= uint256(d.periodStart) + d.period) {
            d.periodStart = uint64(block.timestamp);
            d.periodRequests = 0;
        }
        uint256 counted = uint256(d.periodRequests) + c.units[0] + c.units[1] + c.units[2];
        d.periodRequests = counted > type(uint32).max ? type(uint32).max : uint32(counted);

        uint256 payerBalance = balanceOf[c.payer];
        uint256 remaining = d.totalLimit > d.spent ? d.totalLimit - d.spent : 0;
        charged = c.amount;
        if (payerBalance < charged) {
            charged = payerBalance;
        }
        if (remaining < charged) {
            charged = remaining;
        }
        balanceOf[c.payer] = payerBalance - charged;
        d.spent += charged;
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
