// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// @notice ERC-721 receiver hook (EIP-721), called by `safeTransferFrom` on contract recipients.
interface IERC721TokenReceiver {
    /// @notice Must return its own selector (0x150b7a02) to accept the token.
    function onERC721Received(address operator, address from, uint256 tokenId, bytes calldata data)
        external
        returns (bytes4);
}

/// @title PkpRegistry: Programmable Key Pairs as ERC-721 tokens, with their permissions
/// @notice Minting records a PKP: its public key (the token id is the keccak256 of it, so the
///         id is the key's Ethereum address widened) and its derivation id `keyId`. The nodes
///         derive the key as `root + H(keyId)·G` and refuse a record whose key differs, so the
///         contract need not check the key. The owner decides who else may use the PKP:
///         addresses, auth methods (with scopes) and Lit Actions (by IPFS CID). Only the owner's
///         own transactions change permissions, and the permissions stay with the token when it
///         is transferred (as in Lit's network).
/// @dev The ERC-721 core is written here without imports. Revert reasons of the PKP functions
///      follow `contracts/SPEC.md` exactly.
contract PkpRegistry {
    /// @notice An auth method permitted to use a PKP.
    struct AuthMethod {
        /// The method type (e.g. the ASCII bytes of "OIDC").
        uint32 methodType;
        /// The user's id under that method.
        bytes id;
        /// Bit 0: sign anything; bit 1: personal-sign.
        uint8 scopes;
    }

    struct Record {
        address owner;
        bytes32 keyId;
        bytes publicKey;
    }

    struct Permissions {
        address[] addresses;
        AuthMethod[] methods;
        string[] actions;
    }

    /// @notice The collection's name.
    string public constant name = "Lit PKP";
    /// @notice The collection's symbol.
    string public constant symbol = "PKP";

    /// @notice Whether `operator` may manage every token of `owner`.
    mapping(address => mapping(address => bool)) public isApprovedForAll;

    mapping(uint256 => Record) private records;
    mapping(uint256 => Permissions) private permissions;
    mapping(uint256 => address) private approved;
    mapping(address => uint256[]) private owned;
    /// position of a token in its owner's `owned` list
    mapping(uint256 => uint256) private ownedIndex;

    /// @notice ERC-721: `tokenId` moved from `from` to `to` (`from` is zero at the mint).
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    /// @notice ERC-721: `owner` approved `approved` to move `tokenId`.
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    /// @notice ERC-721: `owner` (dis)allowed `operator` to manage all its tokens.
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);
    /// @notice A PKP was minted to `owner` with derivation id `keyId`.
    event Minted(uint256 indexed tokenId, address indexed owner, bytes32 keyId);
    /// @notice The owner changed who may use `tokenId`.
    event PermissionsChanged(uint256 indexed tokenId);

    // ---- PKPs ---------------------------------------------------------------------------------

    /// @notice Records a PKP owned by the caller.
    /// @param salt Makes the derivation id: `keyId = keccak256(abi.encodePacked(msg.sender, salt))`.
    /// @param publicKey The 64-byte uncompressed secp256k1 public key, without the 0x04 prefix.
    /// @return tokenId `uint256(keccak256(publicKey))`.
    function mint(bytes32 salt, bytes calldata publicKey) external returns (uint256 tokenId) {
        require(publicKey.length == 64, "bad public key");
        tokenId = uint256(keccak256(publicKey));
        require(records[tokenId].owner == address(0), "exists");
        bytes32 keyId = keccak256(abi.encodePacked(msg.sender, salt));
        records[tokenId] = Record({owner: msg.sender, keyId: keyId, publicKey: publicKey});
        _addToOwner(msg.sender, tokenId);
        emit Transfer(address(0), msg.sender, tokenId);
        emit Minted(tokenId, msg.sender, keyId);
    }

    /// @notice A PKP's owner, derivation id and public key.
    function pkp(uint256 tokenId) external view returns (address owner, bytes32 keyId, bytes memory publicKey) {
        Record storage r = _record(tokenId);
        return (r.owner, r.keyId, r.publicKey);
    }

    /// @notice The PKPs `owner` holds.
    function tokensOf(address owner) external view returns (uint256[] memory) {
        return owned[owner];
    }

    // ---- permissions (the owner's transactions only) ------------------------------------------

    /// @notice Lets `user` use the PKP (no-op if it may already).
    function addPermittedAddress(uint256 tokenId, address user) external {
        Permissions storage p = _ownedPermissions(tokenId);
        if (_addressIndex(p.addresses, user) == type(uint256).max) {
            p.addresses.push(user);
        }
        emit PermissionsChanged(tokenId);
    }

    /// @notice Stops `user` from using the PKP (no-op if it could not).
    function removePermittedAddress(uint256 tokenId, address user) external {
        Permissions storage p = _ownedPermissions(tokenId);
        uint256 i = _addressIndex(p.addresses, user);
        if (i != type(uint256).max) {
            for (; i + 1 < p.addresses.length; i++) {
                p.addresses[i] = p.addresses[i + 1];
            }
            p.addresses.pop();
        }
        emit PermissionsChanged(tokenId);
    }

    /// @notice Lets the auth method `(methodType, id)` use the PKP with `scopes` (bit 0 sign
    ///         anything, bit 1 personal-sign), replacing its scopes if it is permitted already.
    function addPermittedAuthMethod(uint256 tokenId, uint32 methodType, bytes calldata id, uint8 scopes) external {
        Permissions storage p = _ownedPermissions(tokenId);
        require(scopes != 0, "no scopes");
        uint256 i = _methodIndex(p.methods, methodType, id);
        if (i == type(uint256).max) {
            p.methods.push(AuthMethod({methodType: methodType, id: id, scopes: scopes}));
        } else {
            p.methods[i].scopes = scopes;
        }
        emit PermissionsChanged(tokenId);
    }

    /// @notice Stops the auth method `(methodType, id)` from using the PKP (no-op if it could not).
    function removePermittedAuthMethod(uint256 tokenId, uint32 methodType, bytes calldata id) external {
        Permissions storage p = _ownedPermissions(tokenId);
        uint256 i = _methodIndex(p.methods, methodType, id);
        if (i != type(uint256).max) {
            for (; i + 1 < p.methods.length; i++) {
                p.methods[i] = p.methods[i + 1];
            }
            p.methods.pop();
        }
        emit PermissionsChanged(tokenId);
    }

    /// @notice Lets the Lit Action with IPFS id `cid` sign with the PKP (no-op if it may already).
    function addPermittedAction(uint256 tokenId, string calldata cid) external {
        Permissions storage p = _ownedPermissions(tokenId);
        if (_actionIndex(p.actions, cid) == type(uint256).max) {
            p.actions.push(cid);
        }
        emit PermissionsChanged(tokenId);
    }

    /// @notice Stops the Lit Action `cid` from signing with the PKP (no-op if it could not).
    function removePermittedAction(uint256 tokenId, string calldata cid) external {
        Permissions storage p = _ownedPermissions(tokenId);
        uint256 i = _actionIndex(p.actions, cid);
        if (i != type(uint256).max) {
            for (; i + 1 < p.actions.length; i++) {
                p.actions[i] = p.actions[i + 1];
            }
            p.actions.pop();
        }
        emit PermissionsChanged(tokenId);
    }

    /// @notice Who may use the PKP besides its owner, each list in the order of addition.
    function getPermissions(uint256 tokenId)
        external
        view
        returns (address[] memory addresses, AuthMethod[] memory methods, string[] memory actions)
    {
        _record(tokenId);
        Permissions storage p = permissions[tokenId];
        return (p.addresses, p.methods, p.actions);
    }

    // ---- ERC-721 ------------------------------------------------------------------------------

    /// @notice ERC-165: ERC-165 itself and ERC-721.
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x01ffc9a7 || interfaceId == 0x80ac58cd;
    }

    /// @notice ERC-721: how many PKPs `owner` holds.
    function balanceOf(address owner) external view returns (uint256) {
        require(owner != address(0), "zero address");
        return owned[owner].length;
    }

    /// @notice ERC-721: the owner of `tokenId`.
    function ownerOf(uint256 tokenId) public view returns (address) {
        return _record(tokenId).owner;
    }

    /// @notice ERC-721: lets `to` move `tokenId` (the owner or an operator of the owner only).
    function approve(address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(msg.sender == owner || isApprovedForAll[owner][msg.sender], "not owner nor operator");
        approved[tokenId] = to;
        emit Approval(owner, to, tokenId);
    }

    /// @notice ERC-721: who may move `tokenId` besides its owner and the owner's operators.
    function getApproved(uint256 tokenId) external view returns (address) {
        _record(tokenId);
        return approved[tokenId];
    }

    /// @notice ERC-721: lets `operator` manage all the caller's PKPs (or stops it).
    function setApprovalForAll(address operator, bool allowed) external {
        require(operator != msg.sender, "approve to caller");
        isApprovedForAll[msg.sender][operator] = allowed;
        emit ApprovalForAll(msg.sender, operator, allowed);
    }

    /// @notice ERC-721: moves `tokenId` from `from` to `to`, permissions included.
    function transferFrom(address from, address to, uint256 tokenId) public {
        address owner = ownerOf(tokenId);
        require(owner == from, "wrong from");
        require(to != address(0), "zero address");
        require(
            msg.sender == owner || approved[tokenId] == msg.sender || isApprovedForAll[owner][msg.sender],
            "not owner nor approved"
        );
        delete approved[tokenId];
        _removeFromOwner(from, tokenId);
        records[tokenId].owner = to;
        _addToOwner(to, tokenId);
        emit Transfer(from, to, tokenId);
    }

    /// @notice ERC-721: `transferFrom`, then a contract recipient must accept the token.
    function safeTransferFrom(address from, address to, uint256 tokenId) external {
        safeTransferFrom(from, to, tokenId, "");
    }

    /// @notice ERC-721: `transferFrom`, then a contract recipient must accept the token.
    function safeTransferFrom(address from, address to, uint256 tokenId, bytes memory data) public {
        transferFrom(from, to, tokenId);
        if (to.code.length > 0) {
            try IERC721TokenReceiver(to).onERC721Received(msg.sender, from, tokenId, data) returns (bytes4 r) {
                require(r == IERC721TokenReceiver.onERC721Received.selector, "not an ERC721 receiver");
            } catch {
                revert("not an ERC721 receiver");
            }
        }
    }

    // ---- internals ----------------------------------------------------------------------------

    function _record(uint256 tokenId) private view returns (Record storage r) {
        r = records[tokenId];
        require(r.owner != address(0), "no such PKP");
    }

    function _ownedPermissions(uint256 tokenId) private view returns (Permissions storage) {
        require(_record(tokenId).owner == msg.sender, "not owner");
        return permissions[tokenId];
    }

    function _addToOwner(address owner, uint256 tokenId) private {
        ownedIndex[tokenId] = owned[owner].length;
        owned[owner].push(tokenId);
    }

    function _removeFromOwner(address owner, uint256 tokenId) private {
        uint256[] storage list = owned[owner];
        uint256 i = ownedIndex[tokenId];
        uint256 last = list[list.length - 1];
        list[i] = last;
        ownedIndex[last] = i;
        list.pop();
        delete ownedIndex[tokenId];
    }

    function _addressIndex(address[] storage list, address a) private view returns (uint256) {
        for (uint256 i = 0; i < list.length; i++) {
            if (list[i] == a) {
                return i;
            }
        }
        return type(uint256).max;
    }

    function _methodIndex(AuthMethod[] storage list, uint32 methodType, bytes calldata id)
        private
        view
        returns (uint256)
    {
        bytes32 h = keccak256(id);
        for (uint256 i = 0; i < list.length; i++) {
            if (list[i].methodType == methodType && keccak256(list[i].id) == h) {
                return i;
            }
        }
        return type(uint256).max;
    }

    function _actionIndex(string[] storage list, string calldata cid) private view returns (uint256) {
        bytes32 h = keccak256(bytes(cid));
        for (uint256 i = 0; i < list.length; i++) {
            if (keccak256(bytes(list[i])) == h) {
                return i;
            }
        }
        return type(uint256).max;
    }
}
