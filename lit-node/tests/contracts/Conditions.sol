// SPDX-License-Identifier: MIT
// Minimal token contracts for the condition tests: just the view functions that access control
// conditions read (ERC20/ERC721/ERC1155 `balanceOf`, ERC721 `ownerOf` and metadata `name`,
// ERC1155 `balanceOfBatch`) and a mint for set-up.
// Written for these tests; not for any real deployment.
pragma solidity ^0.8.20;

contract TestToken {
    mapping(address => uint256) public balanceOf;
    function mint(address to, uint256 amount) external { balanceOf[to] += amount; }
}

contract TestNft {
    string public name = "Lit Test Collection";
    mapping(uint256 => address) private owners;
    mapping(address => uint256) public balanceOf;
    function ownerOf(uint256 id) external view returns (address) {
        address o = owners[id];
        require(o != address(0), "no such token");
        return o;
    }
    function mint(address to, uint256 id) external {
        require(owners[id] == address(0), "minted");
        owners[id] = to;
        balanceOf[to] += 1;
    }
}

contract TestMulti {
    mapping(uint256 => mapping(address => uint256)) private balances;
    function balanceOf(address who, uint256 id) external view returns (uint256) { return balances[id][who]; }
    function balanceOfBatch(address[] calldata who, uint256[] calldata ids) external view returns (uint256[] memory out) {
        require(who.length == ids.length, "length mismatch");
        out = new uint256[](who.length);
        for (uint256 i = 0; i < who.length; i++) { out[i] = balances[ids[i]][who[i]]; }
    }
    function mint(address to, uint256 id, uint256 amount) external { balances[id][to] += amount; }
}

contract Membership {
    mapping(address => uint256) private points;
    function join(address who, uint256 p) external { points[who] = p; }
    function status(address who) external view returns (uint256 score, bool member, string memory tier) {
        uint256 p = points[who];
        return (p, p > 0, p >= 100 ? "gold" : "basic");
    }
}
