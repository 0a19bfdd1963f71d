//! Sign-In with Ethereum messages (EIP-4361): the text a wallet signs with EIP-191
//! `personal_sign` for an `AuthSig`, and the text of a session capability
//! ([`crate::session::capability_siwe_message`]).
//!
//! [`SiweMessage`] holds the typed fields. `Display` writes the exact EIP-4361 text and `FromStr`
//! parses it strictly, following the ABNF of EIP-4361 ("Message Format"):
//!
//! ```text
//! ${domain} wants you to sign in with your Ethereum account:
//! ${address}
//!
//! ${statement}
//!
//! URI: ${uri}
//! Version: ${version}
//! Chain ID: ${chain-id}
//! Nonce: ${nonce}
//! Issued At: ${issued-at}
//! Expiration Time: ${expiration-time}
//! Not Before: ${not-before}
//! Request ID: ${request-id}
//! Resources:
//! - ${resources[0]}
//! - ${resources[1]}
//! ```
//!
//! Lines are separated by a single `\n` and the text ends after the last field (no newline).
//! Without a statement its line is left out but both empty lines stay. `Expiration Time`,
//! `Not Before`, `Request ID` and `Resources` are optional and, when present, in this order.
//! The parser refuses anything else: fields out of order or missing, extra lines, an address
//! that is not EIP-55 checksummed, a `Version` other than `1`, a nonce shorter than 8
//! alphanumeric characters, times that are not RFC 3339 `date-time`s, and values with characters
//! the ABNF does not allow there (the domain is an RFC 3986 authority, the URI and resources are
//! RFC 3986 URIs, the statement is `*( reserved / unreserved / " " )`, the request id
//! `*pchar`). Times keep the text they were written with (see [`Timestamp`]), so every message
//! the parser accepts is displayed again byte for byte: `m.to_string().parse() == Ok(m)`, and
//! `s.parse::<SiweMessage>()?.to_string() == s` except that an empty `Resources:` list is
//! dropped.
//!
//! ```
//! use lit_api::siwe::{SiweMessage, Timestamp};
//! use lit_crypto::eth::Address;
//!
//! let address = Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
//! let issued: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
//! let message = SiweMessage {
//!     statement: Some("Sign in to the example.".into()),
//!     resources: vec!["https://example.com/my-claim.json".into()],
//!     ..SiweMessage::new("example.com", address, "https://example.com/login", 1, "abcdef123456", issued)
//! };
//! let text = message.to_string();
//! assert_eq!(
//!     text,
//!     "example.com wants you to sign in with your Ethereum account:\n\
//!      0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n\n\
//!      Sign in to the example.\n\n\
//!      URI: https://example.com/login\nVersion: 1\nChain ID: 1\nNonce: abcdef123456\n\
//!      Issued At: 2026-01-01T00:00:00Z\nResources:\n- https://example.com/my-claim.json"
//! );
//! assert_eq!(text.parse::<SiweMessage>().unwrap(), message);
//! // a lowercase (not EIP-55) address, a short nonce: refused
//! assert!(text.replace("0x5aAeb", "0x5aaeb").parse::<SiweMessage>().is_err());
//! assert!(text.replace("abcdef123456", "abc").parse::<SiweMessage>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use lit_crypto::eth::Address;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What follows the domain on the first line.
pub const PREAMBLE: &str = " wants you to sign in with your Ethereum account:";

/// The shortest nonce EIP-4361 allows (alphanumeric characters).
pub const MIN_NONCE_LEN: usize = 8;

/// An EIP-4361 message (see the module docs for the text and what parsing checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiweMessage {
    /// The RFC 3986 authority that requests the signing (`host[:port]`, optionally
    /// `userinfo@`).
    pub domain: String,
    /// The signer, written EIP-55 checksummed.
    pub address: Address,
    /// A human-readable assertion (one line, not empty), if any.
    pub statement: Option<String>,
    /// The RFC 3986 URI of the subject of the signing.
    pub uri: String,
    /// The message version.
    pub version: Version,
    /// The EIP-155 chain id.
    pub chain_id: u64,
    /// At least [`MIN_NONCE_LEN`] alphanumeric characters.
    pub nonce: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it expires, if it does.
    pub expiration_time: Option<Timestamp>,
    /// When it becomes valid, if not at once.
    pub not_before: Option<Timestamp>,
    /// A request id (`*pchar`), if any.
    pub request_id: Option<String>,
    /// RFC 3986 URIs the signer wants resolved (e.g. a ReCap); none when empty.
    pub resources: Vec<String>,
}

/// The version of an EIP-4361 message (only `1` exists).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// `Version: 1`.
    #[default]
    V1,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::V1 => f.write_str("1"),
        }
    }
}

/// An RFC 3339 `date-time` as a message writes it: the instant and its exact text. The text is
/// what was signed (`…T00:00:00.000Z` and `…T00:00:00Z` are the same instant in two different
/// messages), so a parsed message is displayed with the very text it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    text: String,
    at: OffsetDateTime,
}

impl Timestamp {
    /// The instant.
    pub fn datetime(&self) -> OffsetDateTime {
        self.at
    }

    /// The text, as written in the message.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Timestamp {
    type Err = time::error::Parse;

    /// Parses an RFC 3339 `date-time` (e.g. `2026-01-01T00:00:00Z`,
    /// `2026-01-01T01:00:00.123+01:00`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self {
            at: OffsetDateTime::parse(s, &Rfc3339)?,
            text: s.to_owned(),
        })
    }
}

impl TryFrom<OffsetDateTime> for Timestamp {
    type Error = time::error::Format;

    /// Writes the instant in RFC 3339 (fails for years outside 0–9999 and offsets with
    /// seconds, which RFC 3339 cannot express).
    fn try_from(at: OffsetDateTime) -> Result<Self, Self::Error> {
        Ok(Self {
            text: at.format(&Rfc3339)?,
            at,
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A field of an EIP-4361 message (named as the message writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The domain on the first line.
    Domain,
    /// The address on the second line.
    Address,
    /// The statement.
    Statement,
    /// `URI`.
    Uri,
    /// `Version`.
    Version,
    /// `Chain ID`.
    ChainId,
    /// `Nonce`.
    Nonce,
    /// `Issued At`.
    IssuedAt,
    /// `Expiration Time`.
    ExpirationTime,
    /// `Not Before`.
    NotBefore,
    /// `Request ID`.
    RequestId,
    /// An entry of `Resources`.
    Resource,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Domain => "domain",
            Field::Address => "address",
            Field::Statement => "statement",
            Field::Uri => "URI",
            Field::Version => "Version",
            Field::ChainId => "Chain ID",
            Field::Nonce => "Nonce",
            Field::IssuedAt => "Issued At",
            Field::ExpirationTime => "Expiration Time",
            Field::NotBefore => "Not Before",
            Field::RequestId => "Request ID",
            Field::Resource => "resource",
        }
    }

    /// What a valid value of the field is.
    fn requirement(self) -> &'static str {
        match self {
            Field::Domain => "an RFC 3986 authority",
            Field::Address => "an EIP-55 checksummed address (0x and 40 hex digits)",
            Field::Statement => "one non-empty line of reserved, unreserved or space characters",
            Field::Uri | Field::Resource => "an RFC 3986 URI",
            Field::Version => "1",
            Field::ChainId => "a decimal EIP-155 chain id",
            Field::Nonce => "at least 8 alphanumeric characters",
            Field::IssuedAt | Field::ExpirationTime | Field::NotBefore => "an RFC 3339 date-time",
            Field::RequestId => "a string of RFC 3986 pchar characters",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a text is not an EIP-4361 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiweError {
    /// The first line is not `<domain> wants you to sign in with your Ethereum account:`.
    #[error("line 1 is not \"<domain>{PREAMBLE}\"")]
    Preamble,
    /// A line is missing, or another one stands where the format puts this one.
    #[error("line {line}: expected {expected}")]
    Expected {
        /// The line (from 1).
        line: usize,
        /// What the format puts there.
        expected: &'static str,
    },
    /// A line after the last field (text after the last resource, a trailing newline, or a
    /// field out of order).
    #[error("line {line}: unexpected text after the last field")]
    Unexpected {
        /// The line (from 1).
        line: usize,
    },
    /// A field's value is not of its type.
    #[error("{field} {value:?} is not {}", field.requirement())]
    Invalid {
        /// The field.
        field: Field,
        /// Its value as written.
        value: String,
    },
}

impl SiweMessage {
    /// A message with the required fields, version 1 and no optional field; set the others
    /// with struct update syntax (`SiweMessage { statement: Some(…), ..SiweMessage::new(…) }`).
    pub fn new(
        domain: impl Into<String>,
        address: Address,
        uri: impl Into<String>,
        chain_id: u64,
        nonce: impl Into<String>,
        issued_at: Timestamp,
    ) -> Self {
        Self {
            domain: domain.into(),
            address,
            statement: None,
            uri: uri.into(),
            version: Version::V1,
            chain_id,
            nonce: nonce.into(),
            issued_at,
            expiration_time: None,
            not_before: None,
            request_id: None,
            resources: Vec::new(),
        }
    }
}

impl fmt::Display for SiweMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{PREAMBLE}\n{}\n\n", self.domain, self.address)?;
        if let Some(statement) = &self.statement {
            writeln!(f, "{statement}")?;
        }
        write!(
            f,
            "\nURI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.uri, self.version, self.chain_id, self.nonce, self.issued_at
        )?;
        if let Some(t) = &self.expiration_time {
            write!(f, "\nExpiration Time: {t}")?;
        }
        if let Some(t) = &self.not_before {
            write!(f, "\nNot Before: {t}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, "\nRequest ID: {id}")?;
        }
        if !self.resources.is_empty() {
            f.write_str("\nResources:")?;
            for r in &self.resources {
                write!(f, "\n- {r}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for SiweMessage {
    type Err = SiweError;

    fn from_str(text: &str) -> Result<Self, SiweError> {
        let mut lines = Lines {
            lines: text.split('\n').collect(),
            next: 0,
        };
        let domain = lines
            .take()
            .and_then(|l| l.strip_suffix(PREAMBLE))
            .ok_or(SiweError::Preamble)?;
        check(Field::Domain, domain, is_authority(domain))?;
        let address = lines.require("the address")?;
        let parsed = Address::parse(address)
            .ok()
            .filter(|a| a.to_checksum() == address);
        let address = parsed.ok_or_else(|| invalid(Field::Address, address))?;
        lines.empty()?;
        let statement = match lines.peek() {
            Some("") => None,
            _ => {
                let s = lines.require("the statement or an empty line")?;
                check(
                    Field::Statement,
                    s,
                    !s.is_empty() && s.chars().all(is_statement_char),
                )?;
                Some(s.to_owned())
            }
        };
        lines.empty()?;
        let uri = lines.field("URI: ", "\"URI: <uri>\"")?;
        check(Field::Uri, uri, is_uri(uri))?;
        let version = lines.field("Version: ", "\"Version: 1\"")?;
        if version != "1" {
            return Err(invalid(Field::Version, version));
        }
        let chain_id = lines.field("Chain ID: ", "\"Chain ID: <chain id>\"")?;
        let chain_id = Some(chain_id)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u64>().ok())
            .ok_or_else(|| invalid(Field::ChainId, chain_id))?;
        let nonce = lines.field("Nonce: ", "\"Nonce: <nonce>\"")?;
        let nonce_ok =
            nonce.len() >= MIN_NONCE_LEN && nonce.bytes().all(|b| b.is_ascii_alphanumeric());
        check(Field::Nonce, nonce, nonce_ok)?;
        let issued_at = lines.field("Issued At: ", "\"Issued At: <date-time>\"")?;
        let issued_at = timestamp(Field::IssuedAt, issued_at)?;
        let expiration_time = lines
            .optional("Expiration Time: ")
            .map(|t| timestamp(Field::ExpirationTime, t))
            .transpose()?;
        let not_before = lines
            .optional("Not Before: ")
            .map(|t| timestamp(Field::NotBefore, t))
            .transpose()?;
        let request_id = lines.optional("Request ID: ");
        if let Some(id) = request_id {
            check(Field::RequestId, id, id.chars().all(is_pchar))?;
        }
        let mut resources = Vec::new();
        if lines.peek() == Some("Resources:") {
            lines.take();
            while let Some(r) = lines.optional("- ") {
                check(Field::Resource, r, is_uri(r))?;
                resources.push(r.to_owned());
            }
        }
        if lines.peek().is_some() {
            return Err(SiweError::Unexpected {
                line: lines.next + 1,
            });
        }
        Ok(Self {
            domain: domain.to_owned(),
            address,
            statement,
            uri: uri.to_owned(),
            version: Version::V1,
            chain_id,
            nonce: nonce.to_owned(),
            issued_at,
            expiration_time,
            not_before,
            request_id: request_id.map(str::to_owned),
            resources,
        })
    }
}

/// The lines of a message and the next one to read.
struct Lines<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Lines<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.next).copied()
    }

    fn take(&mut self) -> Option<&'a str> {
        let line = self.peek()?;
        self.next += 1;
        Some(line)
    }

    fn require(&mut self, expected: &'static str) -> Result<&'a str, SiweError> {
        let line = self.next + 1;
        self.take().ok_or(SiweError::Expected { line, expected })
    }

    fn empty(&mut self) -> Result<(), SiweError> {
        let line = self.next + 1;
        match self.take() {
            Some("") => Ok(()),
            _ => Err(SiweError::Expected {
                line,
                expected: "an empty line",
            }),
        }
    }

    /// The value of the required line `<tag><value>`.
    fn field(&mut self, tag: &str, expected: &'static str) -> Result<&'a str, SiweError> {
        self.optional(tag).ok_or(SiweError::Expected {
            line: self.next + 1,
            expected,
        })
    }

    /// The value of the line `<tag><value>` if it is the next one.
    fn optional(&mut self, tag: &str) -> Option<&'a str> {
        let value = self.peek()?.strip_prefix(tag)?;
        self.next += 1;
        Some(value)
    }
}

fn invalid(field: Field, value: &str) -> SiweError {
    SiweError::Invalid {
        field,
        value: value.to_owned(),
    }
}

fn check(field: Field, value: &str, ok: bool) -> Result<(), SiweError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(field, value))
    }
}

fn timestamp(field: Field, value: &str) -> Result<Timestamp, SiweError> {
    value.parse().map_err(|_| invalid(field, value))
}

/// RFC 3986 `unreserved`.
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// RFC 3986 `sub-delims`.
fn is_sub_delim(c: char) -> bool {
    matches!(
        c,
        '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | '='
    )
}

/// RFC 3986 `reserved` (`gen-delims` and `sub-delims`).
fn is_reserved(c: char) -> bool {
    matches!(c, ':' | '/' | '?' | '#' | '[' | ']' | '@') || is_sub_delim(c)
}

/// EIP-4361 `statement = *( reserved / unreserved / " " )`.
fn is_statement_char(c: char) -> bool {
    is_reserved(c) || is_unreserved(c) || c == ' '
}

/// RFC 3986 `pchar` (with `%` for a `pct-encoded` triple, checked by [`pct_encoded_ok`]).
fn is_pchar(c: char) -> bool {
    is_unreserved(c) || is_sub_delim(c) || matches!(c, ':' | '@' | '%')
}

/// Every `%` starts a `pct-encoded` triple.
fn pct_encoded_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// RFC 3986 `authority = [ userinfo "@" ] host [ ":" port ]`, by its characters: non-empty,
/// `unreserved`, `pct-encoded`, `sub-delims`, `:`, `@` and the brackets of an IP literal.
pub(crate) fn is_authority(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            is_unreserved(c) || is_sub_delim(c) || matches!(c, ':' | '@' | '%' | '[' | ']')
        })
        && pct_encoded_ok(s)
}

/// RFC 3986 `URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]`: a scheme
/// (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`), a colon, then URI characters only
/// (`reserved`, `unreserved`, `pct-encoded`).
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && rest
            .chars()
            .all(|c| is_reserved(c) || is_unreserved(c) || c == '%')
        && pct_encoded_ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn address(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A message in the layout of the example of EIP-4361 ("Example message").
    const EIP_EXAMPLE: &str = "example.com wants you to sign in with your Ethereum account:\n\
        0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\
        I accept the ExampleOrg Terms of Service: https://example.com/tos\n\n\
        URI: https://example.com/login\nVersion: 1\nChain ID: 1\nNonce: 32891756\n\
        Issued At: 2021-09-30T16:25:24Z\nResources:\n\
        - ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n\
        - https://example.com/my-web2-claim.json";

    /// A session capability as Lit's JS SDK writes it (the `siwe` library with an EIP-5573
    /// ReCap): port in the domain, the SDK's statement before the ReCap's, the latest block
    /// hash as nonce, JavaScript `toISOString()` times with milliseconds.
    const LIT_SDK_CAPABILITY: &str = "localhost:3000 wants you to sign in with your Ethereum account:\n\
        0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n\n\
        This is a test statement.  You can put anything you want here. I further authorize the \
        stated URI to perform the following actions on my behalf: (1) 'Threshold': 'Decryption' \
        for 'lit-accesscontrolcondition://*'.\n\n\
        URI: lit:session:5f3b7c3a2e1d0c9b8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a\n\
        Version: 1\nChain ID: 1\n\
        Nonce: 0x6c9c5a8e1b1d8b5e8e5c1f0e1a4c2d3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d\n\
        Issued At: 2024-05-07T12:00:00.000Z\nExpiration Time: 2024-05-08T12:00:00.000Z\n\
        Resources:\n\
        - urn:recap:eyJhdHQiOnsibGl0LWFjY2Vzc2NvbnRyb2xjb25kaXRpb246Ly8qIjp7IlRocmVzaG9sZC9EZWNyeXB0aW9uIjpbe31dfX0sInByZiI6W119";

    /// No statement (both empty lines stay), milliseconds, every optional field, offsets.
    const ALL_FIELDS_NO_STATEMENT: &str =
        "test@127.0.0.1:8080 wants you to sign in with your Ethereum account:\n\
        0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B\n\n\n\
        URI: https://defi.finance/login?next=%2Fhome#top\nVersion: 1\nChain ID: 137\n\
        Nonce: Px7Nh1RPzlCLwqgOb\nIssued At: 2022-11-30T10:20:00.262Z\n\
        Expiration Time: 2022-12-01T11:20:00.262+01:00\nNot Before: 2022-11-30T10:20:00Z\n\
        Request ID: some_id:7@x\nResources:\n- https://defi.finance/";

    #[test]
    fn example_messages_parse_and_display_byte_for_byte() {
        for text in [EIP_EXAMPLE, LIT_SDK_CAPABILITY, ALL_FIELDS_NO_STATEMENT] {
            let m: SiweMessage = text.parse().unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(m.to_string(), text);
            assert_eq!(m.to_string().parse::<SiweMessage>().unwrap(), m);
        }

        let eip: SiweMessage = EIP_EXAMPLE.parse().unwrap();
        assert_eq!(
            eip,
            SiweMessage {
                statement: Some(
                    "I accept the ExampleOrg Terms of Service: https://example.com/tos".into()
                ),
                resources: vec![
                    "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/".into(),
                    "https://example.com/my-web2-claim.json".into(),
                ],
                ..SiweMessage::new(
                    "example.com",
                    address("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"),
                    "https://example.com/login",
                    1,
                    "32891756",
                    ts("2021-09-30T16:25:24Z"),
                )
            }
        );

        let lit: SiweMessage = LIT_SDK_CAPABILITY.parse().unwrap();
        assert_eq!(lit.domain, "localhost:3000");
        assert_eq!(
            lit.expiration_time.as_ref().map(Timestamp::as_str),
            Some("2024-05-08T12:00:00.000Z")
        );
        assert_eq!(
            lit.expiration_time.unwrap().datetime() - lit.issued_at.datetime(),
            time::Duration::days(1)
        );
        let [recap] = lit.resources.as_slice() else {
            panic!("one resource")
        };
        let grants = crate::session::Recap::from_resource_uri(recap)
            .unwrap()
            .grants()
            .unwrap();
        assert_eq!(
            grants,
            [crate::session::ResourceAbilityRequest::new(
                "lit-accesscontrolcondition://*".parse().unwrap(),
                crate::session::LitAbility::AccessControlConditionDecryption,
            )
            .unwrap()]
        );
        assert!(lit.statement.unwrap().ends_with(
            &crate::session::Recap::from_resource_uri(recap)
                .unwrap()
                .statement()
        ));

        let all: SiweMessage = ALL_FIELDS_NO_STATEMENT.parse().unwrap();
        assert_eq!(all.statement, None);
        assert_eq!(all.chain_id, 137);
        assert_eq!(all.request_id.as_deref(), Some("some_id:7@x"));
        // the same instant written with another offset
        assert_eq!(
            all.expiration_time.unwrap().datetime(),
            ts("2022-12-01T10:20:00.262Z").datetime()
        );
        assert_eq!(all.not_before.unwrap().as_str(), "2022-11-30T10:20:00Z");
    }

    #[test]
    fn constructed_messages_display_and_parse_back() {
        let base = SiweMessage::new(
            "localhost",
            address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            "lit:session:abc",
            1,
            "abcdef123456",
            ts("2026-01-01T00:00:00Z"),
        );
        let with_time = |t: &str| Timestamp::try_from(ts(t).datetime()).unwrap();
        for m in [
            base.clone(),
            SiweMessage {
                statement: Some("Decrypt my data.".into()),
                expiration_time: Some(with_time("2026-01-02T00:00:00Z")),
                ..base.clone()
            },
            SiweMessage {
                not_before: Some(with_time("2025-12-31T23:00:00.5-01:00")),
                request_id: Some(String::new()),
                resources: vec!["urn:recap:e30".into(), "lit-pkp://*".into()],
                chain_id: u64::MAX,
                ..base.clone()
            },
        ] {
            let text = m.to_string();
            assert_eq!(text.parse::<SiweMessage>(), Ok(m), "{text}");
        }
        // what the client writes for instants: RFC 3339 with its offset
        assert_eq!(
            with_time("2025-12-31T23:00:00.5-01:00").as_str(),
            "2025-12-31T23:00:00.5-01:00"
        );
        assert_eq!(
            Timestamp::try_from(OffsetDateTime::UNIX_EPOCH)
                .unwrap()
                .as_str(),
            "1970-01-01T00:00:00Z"
        );
        // an empty resource list is no `Resources:` section
        let listed = format!("{base}\nResources:");
        assert_eq!(listed.parse::<SiweMessage>(), Ok(base.clone()));
        assert_eq!(
            base.to_string().lines().last(),
            Some("Issued At: 2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn malformed_messages_are_refused_with_the_line_or_field() {
        let good = SiweMessage {
            statement: Some("Decrypt my data.".into()),
            expiration_time: Some(ts("2026-01-02T00:00:00Z")),
            resources: vec!["litEncryptionCondition://*".into()],
            ..SiweMessage::new(
                "localhost",
                address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
                "lit:session:abc",
                1,
                "abcdef123456",
                ts("2026-01-01T00:00:00Z"),
            )
        }
        .to_string();
        assert!(good.parse::<SiweMessage>().is_ok());
        let no_statement = good.replace("Decrypt my data.\n\n", "\n");
        assert_eq!(no_statement.parse::<SiweMessage>().unwrap().statement, None);

        let expected = |line, expected| SiweError::Expected { line, expected };
        let invalid = |field, value: &str| SiweError::Invalid {
            field,
            value: value.into(),
        };
        let cases: Vec<(String, SiweError)> = vec![
            (String::new(), SiweError::Preamble),
            (good.replace(" wants you", " would like you"), SiweError::Preamble),
            (good.replacen("localhost", "", 1), invalid(Field::Domain, "")),
            (good.replacen("localhost", "local host", 1), invalid(Field::Domain, "local host")),
            (
                good.replacen("localhost", "https://localhost", 1),
                invalid(Field::Domain, "https://localhost"),
            ),
            // not EIP-55, not an address, missing
            (
                good.replace("0x5aAeb", "0x5aaeb"),
                invalid(Field::Address, "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            ),
            (
                good.to_lowercase().replacen("ethereum account", "Ethereum account", 1),
                invalid(Field::Address, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
            ),
            (
                good.replace("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", ""),
                invalid(Field::Address, ""),
            ),
            // empty lines: missing, extra, a statement over two lines
            (good.replacen("\n\nDecrypt", "\nDecrypt", 1), expected(3, "an empty line")),
            (good.replacen("\n\nDecrypt", "\n\n\nDecrypt", 1), expected(5, "\"URI: <uri>\"")),
            (good.replace("Decrypt my", "Decrypt\nmy"), expected(5, "an empty line")),
            (good.replace("my data.", "my data.\r"), invalid(Field::Statement, "Decrypt my data.\r")),
            (good.replace("my data.", "my data. 100%"), invalid(Field::Statement, "Decrypt my data. 100%")),
            (good.replace("my data.", "my \"data\""), invalid(Field::Statement, "Decrypt my \"data\"")),
            // tags renamed, missing or out of order
            (good.replace("URI: ", "URL: "), expected(6, "\"URI: <uri>\"")),
            (good.replace("Version: 1\n", ""), expected(7, "\"Version: 1\"")),
            (
                good.replace("Version: 1\nChain ID: 1", "Chain ID: 1\nVersion: 1"),
                expected(7, "\"Version: 1\""),
            ),
            (good.replace("Chain ID: 1\n", ""), expected(8, "\"Chain ID: <chain id>\"")),
            (good.replace("Nonce: abcdef123456\n", ""), expected(9, "\"Nonce: <nonce>\"")),
            (
                good.replace("Issued At: 2026-01-01T00:00:00Z\n", ""),
                expected(10, "\"Issued At: <date-time>\""),
            ),
            (
                good.replace(
                    "Expiration Time: 2026-01-02T00:00:00Z\nResources:\n- litEncryptionCondition://*",
                    "Resources:\n- litEncryptionCondition://*\nExpiration Time: 2026-01-02T00:00:00Z",
                ),
                SiweError::Unexpected { line: 13 },
            ),
            // values
            (good.replace("URI: lit:session:abc", "URI: lit session"), invalid(Field::Uri, "lit session")),
            (good.replace("URI: lit:session:abc", "URI: _not_a_uri_"), invalid(Field::Uri, "_not_a_uri_")),
            (good.replace("URI: lit:session:abc", "URI: lit:%zz"), invalid(Field::Uri, "lit:%zz")),
            (good.replace("Version: 1", "Version: 2"), invalid(Field::Version, "2")),
            (good.replace("Chain ID: 1", "Chain ID: ?"), invalid(Field::ChainId, "?")),
            (good.replace("Chain ID: 1", "Chain ID: +1"), invalid(Field::ChainId, "+1")),
            (good.replace("Chain ID: 1", "Chain ID: "), invalid(Field::ChainId, "")),
            (
                good.replace("Chain ID: 1", "Chain ID: 18446744073709551616"),
                invalid(Field::ChainId, "18446744073709551616"),
            ),
            (good.replace("Nonce: abcdef123456", "Nonce: abc"), invalid(Field::Nonce, "abc")),
            (good.replace("Nonce: abcdef123456", "Nonce: abcdef-123456"), invalid(Field::Nonce, "abcdef-123456")),
            (good.replace("2026-01-01T00:00:00Z", "yesterday"), invalid(Field::IssuedAt, "yesterday")),
            (
                good.replace("2026-01-01T00:00:00Z", "Wed Oct 05 2011 16:48:00 GMT+0200 (CEST)"),
                invalid(Field::IssuedAt, "Wed Oct 05 2011 16:48:00 GMT+0200 (CEST)"),
            ),
            (good.replace("2026-01-02T00:00:00Z", "2026-01-02"), invalid(Field::ExpirationTime, "2026-01-02")),
            (
                good.replace("\nResources:", "\nNot Before: 2026-13-01T00:00:00Z\nResources:"),
                invalid(Field::NotBefore, "2026-13-01T00:00:00Z"),
            ),
            (
                good.replace("\nResources:", "\nRequest ID: a b\nResources:"),
                invalid(Field::RequestId, "a b"),
            ),
            (
                good.replace("- litEncryptionCondition://*", "- litEncryptionCondition://* - https://x"),
                invalid(Field::Resource, "litEncryptionCondition://* - https://x"),
            ),
            (format!("{good}\n- _not_a_uri_"), invalid(Field::Resource, "_not_a_uri_")),
            // text after the last field, a trailing newline, CRLF line ends
            (format!("{good}\nExtra: line"), SiweError::Unexpected { line: 14 }),
            (format!("{good}\n"), SiweError::Unexpected { line: 14 }),
            (no_statement.replace("Resources:\n- litEncryptionCondition://*", "Resources: x"), SiweError::Unexpected { line: 11 }),
            (good.replace('\n', "\r\n"), SiweError::Preamble),
        ];
        for (text, error) in cases {
            assert_eq!(text.parse::<SiweMessage>(), Err(error), "{text}");
        }
        assert_eq!(
            invalid(Field::Nonce, "abc").to_string(),
            "Nonce \"abc\" is not at least 8 alphanumeric characters"
        );
    }

    fn timestamp_strategy() -> impl Strategy<Value = Timestamp> {
        // years 1970–9999, milliseconds or whole seconds, offsets of whole minutes
        (
            0i64..253_402_214_400,
            0u16..1000,
            prop::bool::ANY,
            -720i32..840,
        )
            .prop_map(|(secs, ms, whole, offset_min)| {
                let offset = time::UtcOffset::from_whole_seconds(offset_min * 60).unwrap();
                let at = OffsetDateTime::from_unix_timestamp(secs)
                    .unwrap()
                    .replace_millisecond(if whole { 0 } else { ms })
                    .unwrap()
                    .to_offset(offset);
                Timestamp::try_from(at).unwrap()
            })
    }

    prop_compose! {
        fn message_strategy()(
            domain in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
            key in any::<[u8; 20]>(),
            statement in prop::option::of("[A-Za-z0-9 .,:/?#@!$&'()*+;=~_-]{1,80}"),
            uri in "[a-z][a-z0-9+.-]{0,8}:[A-Za-z0-9/?#@:._~%-]{0,40}",
            chain_id in any::<u64>(),
            nonce in "[A-Za-z0-9]{8,40}",
            issued_at in timestamp_strategy(),
            expiration_time in prop::option::of(timestamp_strategy()),
            not_before in prop::option::of(timestamp_strategy()),
            request_id in prop::option::of("[A-Za-z0-9:@!$&'()*+,;=._~-]{0,20}"),
            resources in prop::collection::vec("[a-z]{1,8}:[A-Za-z0-9/?#@:._~-]{0,40}", 0..4),
        ) -> SiweMessage {
            // a `%` the URI pattern produced stands for a valid escape
            let uri = uri.replace('%', "%2F");
            SiweMessage {
                statement,
                expiration_time,
                not_before,
                request_id,
                resources,
                ..SiweMessage::new(domain, Address(key), uri, chain_id, nonce, issued_at)
            }
        }
    }

    proptest! {
        #[test]
        fn every_message_displays_to_text_that_parses_back_to_it(m in message_strategy()) {
            let text = m.to_string();
            prop_assert_eq!(text.parse::<SiweMessage>(), Ok(m), "{}", text);
        }
    }
}
