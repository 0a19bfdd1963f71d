//! `Lit.Actions.aesDecrypt`: AES-256 in CBC mode (NIST SP 800-38A §6.2) with PKCS #7 padding
//! (RFC 5652 §6.3), the ciphertext prefixed by its 16-byte IV, as Lit's nodes decrypt it.

use aes::cipher::{BlockDecrypt, KeyInit};

const BLOCK: usize = 16;

/// Why a ciphertext does not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AesError {
    /// The key is not 32 bytes.
    #[error("symmetricKey must be 32 bytes (AES-256), got {0}")]
    KeyLength(usize),
    /// The ciphertext is not an IV followed by whole blocks.
    #[error(
        "ciphertext must be a 16-byte IV followed by one or more 16-byte blocks, got {0} bytes"
    )]
    Length(usize),
    /// The padding is wrong: the key or the ciphertext is wrong.
    #[error("the ciphertext does not decrypt under this key (bad padding)")]
    Padding,
}

/// The plaintext of `iv ‖ ciphertext` under `key`.
pub(crate) fn decrypt(key: &[u8], iv_and_ciphertext: &[u8]) -> Result<Vec<u8>, AesError> {
    let key: &[u8; 32] = key.try_into().map_err(|_| AesError::KeyLength(key.len()))?;
    let n = iv_and_ciphertext.len();
    if n < 2 * BLOCK || !n.is_multiple_of(BLOCK) {
        return Err(AesError::Length(n));
    }
    let (iv, body) = iv_and_ciphertext.split_at(BLOCK);
    let mut plain = cbc_decrypt(key, iv, body);
    let pad = usize::from(*plain.last().ok_or(AesError::Padding)?);
    if pad == 0
        || pad > BLOCK
        || !plain[plain.len() - pad..]
            .iter()
            .all(|b| usize::from(*b) == pad)
    {
        return Err(AesError::Padding);
    }
    plain.truncate(plain.len() - pad);
    Ok(plain)
}

/// CBC decryption of whole blocks: `P_i = D_K(C_i) ⊕ C_{i-1}`, `C_0 = IV`.
fn cbc_decrypt(key: &[u8; 32], iv: &[u8], body: &[u8]) -> Vec<u8> {
    let cipher = aes::Aes256::new(&(*key).into());
    let mut out = Vec::with_capacity(body.len());
    let mut previous = iv;
    for block in body.chunks_exact(BLOCK) {
        // `chunks_exact` gives whole blocks
        let mut b = <[u8; BLOCK]>::try_from(block).unwrap_or_default().into();
        cipher.decrypt_block(&mut b);
        out.extend(b.iter().zip(previous).map(|(x, p)| x ^ p));
        previous = block;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap_or_default()
    }

    /// NIST SP 800-38A, F.2.6 CBC-AES256.Decrypt.
    #[test]
    fn nist_sp800_38a_cbc_aes256() {
        let key: [u8; 32] = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
            .try_into()
            .unwrap_or([0; 32]);
        let iv = h("000102030405060708090a0b0c0d0e0f");
        let ct = h(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                    39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        );
        let pt = h(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                    30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        );
        assert_eq!(cbc_decrypt(&key, &iv, &ct), pt);
    }

    #[test]
    fn lengths_and_padding_are_checked() {
        assert_eq!(decrypt(&[0; 16], &[0; 32]), Err(AesError::KeyLength(16)));
        assert_eq!(decrypt(&[0; 32], &[0; 16]), Err(AesError::Length(16)));
        assert_eq!(decrypt(&[0; 32], &[0; 33]), Err(AesError::Length(33)));
        // a random block almost never ends in valid padding; this one does not
        assert_eq!(decrypt(&[0; 32], &[0; 32]), Err(AesError::Padding));
    }
}
