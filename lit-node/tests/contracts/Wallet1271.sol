// SPDX-License-Identifier: MIT
// Contracts for the EIP-1271 tests: a minimal contract wallet owned by one key, a contract
// without `isValidSignature`, and one whose fallback accepts any call and returns nothing.
// Written for these tests; not for any real deployment.
pragma solidity ^0.8.20;

/// A contract wallet whose signatures are ECDSA signatures by its owner (EIP-1271).
contract Wallet1271 {
    address public immutable owner;

    /// EIP-1271: bytes4(keccak256("isValidSignature(bytes32,bytes)")).
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;

    /// secp256k1 n / 2: signatures with a larger `s` are malleable copies (EIP-2).
    uint256 internal constant HALF_N =
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    constructor(address owner_) {
        owner = owner_;
    }

    /// Returns the magic value when `signature` (65 bytes, r ‖ s ‖ v) recovers to the owner
    /// over `hash`, else 0xffffffff.
    function isValidSignature(bytes32 hash, bytes calldata signature)
        external
        view
        returns (bytes4)
    {
        if (signature.length != 65) {
            return 0xffffffff;
        }
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) {
            v += 27;
        }
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) {
            return 0xffffffff;
        }
        address signer = ecrecover(hash, v, r, s);
        if (signer != address(0) && signer == owner) {
            return MAGIC_VALUE;
        }
        return 0xffffffff;
    }
}

/// A contract that has nothing to do with signatures: calls to unknown functions revert.
contract Counter {
    uint256 public count;

    function increment() external {
        count += 1;
    }
}

/// A contract whose fallback accepts every call and returns no data.
contract Sink {
    fallback() external {}
}
