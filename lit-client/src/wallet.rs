//! An Ethereum wallet (a secp256k1 key) that signs the client's `AuthSig`s: EIP-4361 (Sign-In
//! with Ethereum) messages signed with EIP-191 `personal_sign`.

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use k256::ecdsa::SigningKey;
use lit_api::session::SESSION_URI_PREFIX;
use lit_api::siwe::{SiweMessage, Timestamp};
use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use lit_crypto::eth::{personal_sign, Address};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::ClientError;

/// The default lifetime of an `AuthSig`.
pub const DEFAULT_AUTH_TTL: Duration = Duration::from_secs(10 * 60);

/// The `domain` of the SIWE messages the client signs.
pub const SIWE_DOMAIN: &str = "localhost";

/// The human-readable statement of the SIWE messages the client signs.
pub const SIWE_STATEMENT: &str =
    "Authorize the Lit network to check access control conditions for this address.";

/// An Ethereum wallet. The key is zeroized on drop and never printed.
#[derive(Clone)]
pub struct Wallet {
    key: SigningKey,
    address: Address,
}

/// The wallet file: `{"address": "0x…", "privateKey": "0x…"}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WalletFile {
    address: String,
    private_key: String,
}

impl Drop for WalletFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_key);
    }
}

impl Wallet {
    /// A fresh random wallet.
    pub fn random() -> Self {
        Self::from_signing_key(SigningKey::random(&mut OsRng))
    }

    /// The wallet of a secret key (32 bytes, big-endian, in `1..n`).
    pub fn from_bytes(secret: &[u8]) -> Result<Self, ClientError> {
        let key = SigningKey::from_slice(secret).map_err(|_| ClientError::Wallet {
            path: "<key bytes>".into(),
            reason: "the private key is not a valid secp256k1 scalar".into(),
        })?;
        Ok(Self::from_signing_key(key))
    }

    /// The wallet of a signing key.
    pub fn from_signing_key(key: SigningKey) -> Self {
        let address = Address::from_public_key(key.verifying_key());
        Self { key, address }
    }

    /// Its address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Writes the wallet as JSON `{"address": "0x…", "privateKey": "0x…"}`. Refuses to overwrite
    /// an existing file; on unix the file is created with mode `0600`.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let mut secret = self.key.to_bytes();
        let digits = Zeroizing::new(hex::encode(secret));
        zeroize::Zeroize::zeroize(&mut secret[..]);
        let file = WalletFile {
            address: self.address.to_checksum(),
            private_key: format!("0x{}", digits.as_str()),
        };
        let json = Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| {
            ClientError::Wallet {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })?);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(|e| {
            let reason = if e.kind() == std::io::ErrorKind::AlreadyExists {
                "file exists; refusing to overwrite a wallet".to_string()
            } else {
                e.to_string()
            };
            ClientError::Wallet {
                path: path.display().to_string(),
                reason,
            }
        })?;
        f.write_all(json.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(|e| ClientError::Wallet {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Reads a wallet written by [`Wallet::save`] and checks that the address matches the key.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::Wallet {
            path: path.display().to_string(),
            reason,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?);
        let file: WalletFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let digits = file
            .private_key
            .strip_prefix("0x")
            .unwrap_or(&file.private_key);
        let secret =
            Zeroizing::new(hex::decode(digits).map_err(|_| bad("privateKey is not hex".into()))?);
        if secret.len() != 32 {
            return Err(bad("privateKey is not 32 bytes".into()));
        }
        let key = SigningKey::from_slice(&secret)
            .map_err(|_| bad("privateKey is not a valid secp256k1 key".into()))?;
        let wallet = Self::from_signing_key(key);
        let claimed = Address::parse(&file.address).map_err(|e| bad(e.to_string()))?;
        if claimed != wallet.address {
            return Err(bad(format!(
                "address {} is not the address {} of the private key",
                file.address, wallet.address
            )));
        }
        Ok(wallet)
    }

    /// The SIWE (EIP-4361) message this wallet signs for an `AuthSig` issued at `now` (whole
    /// seconds, UTC) and valid for `ttl`, with a fresh random nonce and session URI.
    pub fn siwe_message(&self, now: SystemTime, ttl: Duration) -> Result<SiweMessage, ClientError> {
        let time = |e: &dyn fmt::Display| ClientError::Config(format!("time: {e}"));
        let issued = OffsetDateTime::from(now)
            .replace_nanosecond(0)
            .map_err(|e| time(&e))?;
        let timestamp = |t: OffsetDateTime| Timestamp::try_from(t).map_err(|e| time(&e));
        let mut session = [0u8; 16];
        OsRng.fill_bytes(&mut session);
        Ok(SiweMessage {
            statement: Some(SIWE_STATEMENT.to_string()),
            expiration_time: Some(timestamp(issued + ttl)?),
            ..SiweMessage::new(
                SIWE_DOMAIN,
                self.address,
                format!("{SESSION_URI_PREFIX}{}", hex::encode(session)),
                1,
                random_nonce(),
                timestamp(issued)?,
            )
        })
    }

    /// An `AuthSig`: a SIWE message (see [`Wallet::siwe_message`]) signed with EIP-191
    /// `personal_sign`, valid from `now` for `ttl`.
    pub fn auth_sig(&self, now: SystemTime, ttl: Duration) -> Result<AuthSig, ClientError> {
        let message = self.siwe_message(now, ttl)?.to_string();
        let sig = personal_sign(&self.key, message.as_bytes())
            .map_err(|e| ClientError::Config(format!("signing the auth message: {e}")))?;
        Ok(AuthSig {
            sig: format!("0x{}", hex::encode(sig)),
            derived_via: DERIVED_VIA_PERSONAL_SIGN.to_string(),
            signed_message: message,
            address: self.address.to_checksum(),
            algo: None,
        })
    }
}

/// 16 random alphanumeric characters (EIP-4361 requires at least 8).
fn random_nonce() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(16);
    while out.len() < 16 {
        let mut b = [0u8; 1];
        OsRng.fill_bytes(&mut b);
        // 248 = 4 · 62: rejection sampling keeps the characters uniform.
        if let Some(&c) = ALPHABET.get(usize::from(b[0]) % ALPHABET.len()) {
            if b[0] < 248 {
                out.push(char::from(c));
            }
        }
    }
    out
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &self.address)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lit_crypto::eth::{eip191_hash, recover_address};

    #[test]
    fn save_load_roundtrip_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let w = Wallet::random();
        w.save(&path).unwrap();
        let loaded = Wallet::load(&path).unwrap();
        assert_eq!(loaded.address(), w.address());
        assert_eq!(loaded.signing_key().to_bytes(), w.signing_key().to_bytes());
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["address"], w.address().to_checksum());
        assert!(json["privateKey"].as_str().unwrap().starts_with("0x"));

        let other = Wallet::random();
        let err = other.save(&path).unwrap_err().to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
        // the original file is intact
        assert_eq!(Wallet::load(&path).unwrap().address(), w.address());
    }

    #[cfg(unix)]
    #[test]
    fn wallet_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        Wallet::random().save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn load_refuses_mismatched_address_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = Wallet::random();
        let b = Wallet::random();
        let path = dir.path().join("mismatch.json");
        std::fs::write(
            &path,
            serde_json::json!({
                "address": b.address().to_checksum(),
                "privateKey": format!("0x{}", hex::encode(a.signing_key().to_bytes())),
            })
            .to_string(),
        )
        .unwrap();
        let err = Wallet::load(&path).unwrap_err().to_string();
        assert!(err.contains("is not the address"), "{err}");

        let path = dir.path().join("extra.json");
        std::fs::write(
            &path,
            serde_json::json!({
                "address": a.address().to_checksum(),
                "privateKey": hex::encode(a.signing_key().to_bytes()),
                "mnemonic": "x",
            })
            .to_string(),
        )
        .unwrap();
        assert!(Wallet::load(&path).is_err());
        assert!(Wallet::load(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let w = Wallet::random();
        let dbg = format!("{w:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&hex::encode(w.signing_key().to_bytes())));
    }

    #[test]
    fn auth_sig_recovers_to_the_wallet_and_has_the_siwe_fields() {
        let w = Wallet::random();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let auth = w.auth_sig(now, DEFAULT_AUTH_TTL).unwrap();
        assert_eq!(auth.derived_via, "web3.eth.personal.sign");
        assert_eq!(auth.address, w.address().to_checksum());
        let sig = hex::decode(auth.sig.strip_prefix("0x").unwrap()).unwrap();
        assert_eq!(sig.len(), 65);
        let signer = recover_address(&eip191_hash(auth.signed_message.as_bytes()), &sig).unwrap();
        assert_eq!(signer, w.address());

        let msg = &auth.signed_message;
        let mut lines = msg.lines();
        assert_eq!(
            lines.next().unwrap(),
            "localhost wants you to sign in with your Ethereum account:"
        );
        assert_eq!(lines.next().unwrap(), w.address().to_checksum());
        assert_eq!(lines.next().unwrap(), "");
        // a strict EIP-4361 message: the fields in order, exactly these optional ones
        let parsed: SiweMessage = msg.parse().unwrap();
        assert_eq!(parsed.to_string(), *msg);
        assert_eq!(parsed.domain, SIWE_DOMAIN);
        assert_eq!(parsed.address, w.address());
        assert_eq!(parsed.statement.as_deref(), Some(SIWE_STATEMENT));
        assert!(parsed.uri.starts_with("lit:session:"));
        assert_eq!(parsed.version, lit_api::siwe::Version::V1);
        assert_eq!(parsed.chain_id, 1);
        let nonce = &parsed.nonce;
        assert!(nonce.len() >= 8 && nonce.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(parsed.not_before, None);
        assert_eq!(parsed.request_id, None);
        assert!(parsed.resources.is_empty());
        assert_eq!(parsed.issued_at.as_str(), "2026-09-21T14:13:20Z");
        let issued = parsed.issued_at.datetime();
        let expires = parsed.expiration_time.unwrap().datetime();
        assert_eq!(issued.unix_timestamp(), 1_790_000_000);
        assert_eq!((expires - issued).whole_seconds(), 600);

        // fresh nonce and session every time
        let again = w.auth_sig(now, DEFAULT_AUTH_TTL).unwrap();
        assert_ne!(again.signed_message, auth.signed_message);
    }

    #[test]
    fn signature_by_another_wallet_recovers_elsewhere() {
        let w = Wallet::random();
        let other = Wallet::random();
        let auth = w.auth_sig(SystemTime::now(), DEFAULT_AUTH_TTL).unwrap();
        let forged = personal_sign(other.signing_key(), auth.signed_message.as_bytes()).unwrap();
        let signer =
            recover_address(&eip191_hash(auth.signed_message.as_bytes()), &forged).unwrap();
        assert_ne!(signer, w.address());
    }
}
