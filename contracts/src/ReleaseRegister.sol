// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// @title ReleaseRegister: the node software a Lit network approves
/// @notice A release is an image's 48-byte SHA-384 launch measurement (AMD SEV-SNP), with the
///         minimum TCB a guest running it must report and its flags. Nodes and clients build
///         their attestation policy from this register: an active release is accepted with its
///         own TCB floor and flags, a revoked one is refused by name. Only the admin (the
///         deployer) adds and revokes releases; a measurement is added once, and revocation is
///         final, so the register only grows and a revoked release never comes back.
/// @dev Behaviour and revert reasons follow `contracts/SPEC.md` exactly: the node's embedded
///      backend mirrors them and one conformance suite runs against both. The register is small
///      (a release per software version), so it is kept as an array and returned whole.
contract ReleaseRegister {
    /// @notice Minimum `REPORTED_TCB` of a guest, per component (security patch levels).
    struct Tcb {
        /// FMC SPL (only checked on Turin, which has the component).
        uint8 fmc;
        /// Boot loader SPL.
        uint8 bootloader;
        /// TEE SPL.
        uint8 tee;
        /// SNP firmware SPL.
        uint8 snp;
        /// Microcode SPL.
        uint8 microcode;
    }

    /// @notice One approved release.
    struct Release {
        /// The image's SHA-384 launch measurement (48 bytes).
        bytes measurement;
        /// The minimum TCB of a guest running it.
        Tcb minTcb;
        /// Bit 0: guests may allow debugging (test images); bit 1: VCEK-signed reports only.
        uint32 flags;
        /// Revoked by the admin (final).
        bool revoked;
        /// When it was added (block timestamp).
        uint64 addedAt;
        /// When it was revoked (block timestamp), 0 while active.
        uint64 revokedAt;
    }

    /// @notice The account that adds and revokes releases: the deployer.
    address public immutable admin;

    /// every release, in the order of addition
    Release[] private list;
    /// position + 1 in `list` by keccak256(measurement); 0 for an unknown measurement
    mapping(bytes32 => uint256) private position;

    /// @notice The release of `measurement` (`id = keccak256(measurement)`) was approved.
    event ReleaseAdded(bytes32 indexed id, bytes measurement, Tcb minTcb, uint32 flags);
    /// @notice The release `id` (`keccak256(measurement)`) was revoked.
    event ReleaseRevoked(bytes32 indexed id);

    /// @notice The deployer becomes the admin.
    constructor() {
        admin = msg.sender;
    }

    /// @notice Approves the image of `measurement` (admin only), once: a measurement that was
    ///         ever added, even if revoked since, cannot be added again.
    /// @param measurement The 48-byte SHA-384 launch measurement.
    /// @param minTcb The minimum TCB of a guest running it.
    /// @param flags Bit 0: debugging allowed; bit 1: VCEK only.
    function addRelease(bytes calldata measurement, Tcb calldata minTcb, uint32 flags) external {
        require(msg.sender == admin, "not admin");
        require(measurement.length == 48, "measurement must be 48 bytes");
        bytes32 id = keccak256(measurement);
        require(position[id] == 0, "release exists");
        list.push(
            Release({
                measurement: measurement,
                minTcb: minTcb,
                flags: flags,
                revoked: false,
                addedAt: uint64(block.timestamp),
                revokedAt: 0
            })
        );
        position[id] = list.length;
        emit ReleaseAdded(id, measurement, minTcb, flags);
    }

    /// @notice Revokes the active release of `measurement` (admin only; final).
    function revokeRelease(bytes calldata measurement) external {
        require(msg.sender == admin, "not admin");
        bytes32 id = keccak256(measurement);
        uint256 p = position[id];
        require(p != 0, "no such release");
        Release storage r = list[p - 1];
        require(!r.revoked, "release revoked");
        r.revoked = true;
        r.revokedAt = uint64(block.timestamp);
        emit ReleaseRevoked(id);
    }

    /// @notice Every release ever added, in the order of addition; revoked ones say so.
    function releases() external view returns (Release[] memory) {
        return list;
    }
}
