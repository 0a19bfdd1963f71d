//! Content addressing: the id of an action is the IPFS CIDv0 that `ipfs add` gives its code.
//!
//! `ipfs add` with its defaults (and `ipfs-only-hash`, and Lit) cuts the file into fixed
//! 262 144-byte chunks, wraps each chunk in a UnixFS `File` node inside a dag-pb node (CIDv0 has no
//! raw leaves), and joins the chunks under a balanced tree of at most 174 links per node. A
//! single-chunk file is its own root. The id is the base58btc encoding of the sha2-256 multihash
//! of the root's dag-pb bytes, which always starts with `Qm`.
//!
//! Formats: UnixFS `Data` (`Type = 1`, `Data = 2`, `filesize = 3`, repeated `blocksizes = 4`) and
//! dag-pb `PBNode` (`Links = 2` written before `Data = 1`; `PBLink`: `Hash = 1`, `Name = 2`,
//! `Tsize = 3`), see <https://github.com/ipfs/specs/blob/main/UNIXFS.md> and
//! <https://ipld.io/specs/codecs/dag-pb/spec/>.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Size of the fixed chunks `ipfs add` cuts a file into (its default `size-262144` chunker).
pub const CHUNK_SIZE: usize = 262_144;
/// Most links a node of the balanced layout holds (the go-ipfs and js-ipfs default).
pub const MAX_LINKS: usize = 174;

/// Multihash code of sha2-256.
const SHA2_256: u8 = 0x12;
/// UnixFS data type `File`.
const UNIXFS_FILE: u64 = 2;

/// The content id of an action: an IPFS CIDv0 (`Qm…`, 46 characters).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId {
    /// The 34-byte multihash (`0x12 0x20` followed by the sha2-256 digest).
    multihash: [u8; 34],
}

/// Why a string is not a CIDv0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidError {
    /// The string is not base58btc.
    #[error("action id {0:?} is not base58btc")]
    NotBase58(String),
    /// The bytes are not a sha2-256 multihash of 32 bytes.
    #[error("action id {0:?} is not a CIDv0 (a base58btc sha2-256 multihash, \"Qm…\")")]
    NotCidV0(String),
}

impl ActionId {
    /// The CIDv0 that `ipfs add` gives to `code`.
    pub fn of(code: &[u8]) -> Self {
        let root = build_root(code);
        Self::from_digest(Sha256::digest(&root.block).into())
    }

    fn from_digest(digest: [u8; 32]) -> Self {
        let mut multihash = [0u8; 34];
        multihash[0] = SHA2_256;
        multihash[1] = 32;
        multihash[2..].copy_from_slice(&digest);
        Self { multihash }
    }

    /// The multihash bytes (`0x12 0x20 ‖ sha256`).
    pub fn multihash(&self) -> &[u8; 34] {
        &self.multihash
    }
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(&self.multihash).into_string())
    }
}

impl fmt::Debug for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionId({self})")
    }
}

impl FromStr for ActionId {
    type Err = CidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|_| CidError::NotBase58(s.to_owned()))?;
        let multihash: [u8; 34] = bytes
            .try_into()
            .map_err(|_| CidError::NotCidV0(s.to_owned()))?;
        if multihash[0] != SHA2_256 || multihash[1] != 32 {
            return Err(CidError::NotCidV0(s.to_owned()));
        }
        Ok(Self { multihash })
    }
}

impl serde::Serialize for ActionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ActionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A node of the file's DAG, as its parent needs to link to it.
struct Node {
    /// The dag-pb bytes of the node.
    block: Vec<u8>,
    /// Bytes of the file below this node.
    file_size: u64,
    /// The node's bytes plus the bytes of everything it links to (`Tsize`).
    cumulative: u64,
}

fn build_root(code: &[u8]) -> Node {
    let mut level: Vec<Node> = if code.is_empty() {
        vec![leaf(code)]
    } else {
        code.chunks(CHUNK_SIZE).map(leaf).collect()
    };
    // A one-chunk file is its own root; otherwise reduce level by level (balanced layout: every
    // group of 174 becomes a parent, also a last group of one).
    if level.len() == 1 {
        if let Some(only) = level.pop() {
            return only;
        }
    }
    loop {
        level = level.chunks(MAX_LINKS).map(parent).collect();
        if level.len() <= 1 {
            break;
        }
    }
    level.pop().unwrap_or_else(|| leaf(&[]))
}

fn leaf(chunk: &[u8]) -> Node {
    let mut unixfs = Vec::with_capacity(chunk.len() + 16);
    put_varint_field(&mut unixfs, 1, UNIXFS_FILE);
    if !chunk.is_empty() {
        put_bytes_field(&mut unixfs, 2, chunk);
    }
    put_varint_field(&mut unixfs, 3, chunk.len() as u64);
    let mut block = Vec::with_capacity(unixfs.len() + 8);
    put_bytes_field(&mut block, 1, &unixfs);
    let size = block.len() as u64;
    Node {
        block,
        file_size: chunk.len() as u64,
        cumulative: size,
    }
}

fn parent(children: &[Node]) -> Node {
    let file_size: u64 = children.iter().map(|c| c.file_size).sum();
    let mut unixfs = Vec::new();
    put_varint_field(&mut unixfs, 1, UNIXFS_FILE);
    put_varint_field(&mut unixfs, 3, file_size);
    for c in children {
        put_varint_field(&mut unixfs, 4, c.file_size);
    }
    let mut block = Vec::new();
    for c in children {
        let digest: [u8; 32] = Sha256::digest(&c.block).into();
        let mut link = Vec::with_capacity(48);
        let mut hash = Vec::with_capacity(34);
        hash.extend_from_slice(&[SHA2_256, 32]);
        hash.extend_from_slice(&digest);
        put_bytes_field(&mut link, 1, &hash);
        put_bytes_field(&mut link, 2, b"");
        put_varint_field(&mut link, 3, c.cumulative);
        put_bytes_field(&mut block, 2, &link);
    }
    put_bytes_field(&mut block, 1, &unixfs);
    let cumulative = block.len() as u64 + children.iter().map(|c| c.cumulative).sum::<u64>();
    Node {
        block,
        file_size,
        cumulative,
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ids() {
        // `ipfs add` of an empty file and of "hello world" (no newline).
        assert_eq!(
            ActionId::of(b"").to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!(
            ActionId::of(b"hello world").to_string(),
            "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
        );
    }

    #[test]
    fn parse_round_trip_and_rejects() {
        let id = ActionId::of(b"x");
        let parsed: ActionId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert!(matches!(
            "Qm0OIl".parse::<ActionId>(),
            Err(CidError::NotBase58(_))
        ));
        assert!(matches!(
            "3vQB7B6MrGQZaxCuFg4oh".parse::<ActionId>(),
            Err(CidError::NotCidV0(_))
        ));
    }
}
