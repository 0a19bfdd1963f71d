//! Node-to-node networking: the HTTP peer transport that drives sans-I/O protocols
//! ([`transport`]) and the signed, sealed envelopes it carries ([`peer`]).

pub mod peer;
pub mod transport;

pub use peer::{open_envelope, seal_envelope, EnvelopeError, PeerKeys};
pub use transport::{
    drive, DriveError, DriveOptions, Peer, PeerConnection, PeerNet, TransportOptions,
};
