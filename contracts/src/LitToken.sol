// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// @title LitToken: the test token operators stake on development and test networks
/// @notice A plain ERC-20 (EIP-20) named "Test LPX" ("tstLPX", 18 decimals). The whole supply is
///         minted once, to the faucet given at deployment, which hands it out to operators.
/// @dev Written without imports so that the contracts build with nothing but `solc`.
contract LitToken {
    /// @notice The token's name.
    string public constant name = "Test LPX";
    /// @notice The token's symbol.
    string public constant symbol = "tstLPX";
    /// @notice Decimals of the display unit.
    uint8 public constant decimals = 18;

    /// @notice Tokens in existence (all minted at deployment).
    uint256 public totalSupply;
    /// @notice Tokens held by an account.
    mapping(address => uint256) public balanceOf;
    /// @notice What a spender may still move out of an owner's account.
    mapping(address => mapping(address => uint256)) public allowance;

    /// @notice `value` tokens moved from `from` to `to` (`from` is zero at the mint).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice `owner` allowed `spender` to move `value` of its tokens.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Mints `supply` tokens to `faucet`.
    /// @param faucet The account that receives the whole supply.
    /// @param supply How many tokens (in the smallest unit) exist.
    constructor(address faucet, uint256 supply) {
        require(faucet != address(0), "zero address");
        totalSupply = supply;
        balanceOf[faucet] = supply;
        emit Transfer(address(0), faucet, supply);
    }

    /// @notice Moves `value` of the caller's tokens to `to`.
    /// @return Always true (failures revert).
    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    /// @notice Lets `spender` move up to `value` of the caller's tokens (replaces any allowance).
    /// @return Always true.
    function approve(address spender, uint256 value) external returns (bool) {
        require(spender != address(0), "zero address");
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves `value` tokens from `from` to `to` within the caller's allowance from `from`.
    /// @dev An allowance of `type(uint256).max` is unlimited and never decreases.
    /// @return Always true (failures revert).
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "insufficient allowance");
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) private {
        require(to != address(0), "zero address");
        uint256 held = balanceOf[from];
        require(held >= value, "insufficient balance");
        unchecked {
            balanceOf[from] = held - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
