//! The cryptographic core of the Lit network in one process (no nodes, no HTTP).
//!
//! A **trusted dealer** (for this example only — the real network creates its key by
//! distributed key generation, so that no machine ever holds it) shares a BLS key among five
//! nodes with threshold three. Three nodes sign a message; the client checks each share,
//! combines them and verifies the result as an ordinary BLS signature. Then data is encrypted
//! to the network key under access control conditions and decrypted with the network's
//! combined signature on its identity.
//!
//! `cargo run --release -p lit-examples --example crypto_core`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;

use lit_crypto::bls;
use lit_crypto::ibe;
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::protocol::default_threshold;
use lit_crypto::PartyId;

fn short(bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    if h.len() > 24 {
        format!(
            "{}…{} ({} bytes)",
            &h[..12],
            &h[h.len() - 12..],
            bytes.len()
        )
    } else {
        h
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut rng = rand_core::OsRng;
    let n = 5u32;
    let t = default_threshold(n as usize);
    let nodes: Vec<PartyId> = PartyId::range(n).collect();

    println!("== 1. Key generation (TRUSTED DEALER: example only; the network runs a DKG)");
    let (key_set, key_shares) = bls::deal_with_trusted_dealer(t, &nodes, &mut rng)?;
    println!("   {n} nodes, threshold {t}");
    println!(
        "   network public key (G1): {}",
        short(&key_set.public_key().to_bytes())
    );
    println!(
        "   key set id:              {}",
        short(&key_set.id().to_bytes())
    );
    for share in &key_shares {
        key_set.check_key_share(share)?;
        println!(
            "   node {} holds {:?}; public key share {}",
            share.id(),
            share,
            short(&share.public_key_share().as_affine().to_compressed())
        );
    }

    println!("\n== 2. Threshold signing");
    let msg = b"hello from the quickstart";
    let signers = &key_shares[1..1 + t];
    let sig_shares: Vec<_> = signers.iter().map(|k| k.sign(msg)).collect();
    for s in &sig_shares {
        key_set.verify_share(msg, s)?;
        println!(
            "   node {} signature share {} verified",
            s.id(),
            short(&s.to_bytes()[36..])
        );
    }
    let signature = key_set.combine(msg, &sig_shares)?;
    println!(
        "   combined signature (G2): {}",
        short(&signature.to_bytes())
    );
    key_set.public_key().verify(msg, &signature)?;
    println!(
        "   verifies under the network public key ({})",
        std::str::from_utf8(bls::DST)?
    );

    println!("\n== 3. A bad share is caught and named");
    let mut tampered = sig_shares.clone();
    tampered[0] = signers[0].sign(b"something else");
    match key_set.combine(msg, &tampered) {
        Err(e) => println!("   combine refused: {e} (culprits {:?})", e.culprits()),
        Ok(_) => return Err("a bad share was accepted".into()),
    }

    println!("\n== 4. Encryption to the network key under access control conditions");
    let conditions = r#"[{"chain":"ethereum","method":"eth_getBalance","parameters":[":userAddress","latest"],"returnValueTest":{"comparator":">=","value":"1000000000000"},"standardContractType":"","contractAddress":""}]"#;
    let data = b"The secret recipe: 2 cups of flour, 1 cup of sugar, 3 eggs.";
    let identity = AccessControlIdentity::new(conditions, data)?;
    println!("   identity: {identity}");
    let ciphertext = ibe::encrypt(&key_set.public_key(), &identity.to_bytes(), data)?;
    println!("   ciphertext: {}", short(&ciphertext.to_bytes()));

    println!("\n== 5. Decryption: {t} nodes check the conditions and sign the identity");
    let dec_shares: Vec<_> = key_shares[..t]
        .iter()
        .map(|k| k.sign(ciphertext.identity()))
        .collect();
    let key = key_set.combine(ciphertext.identity(), &dec_shares)?;
    let plaintext = ibe::decrypt(&ciphertext, &key)?;
    identity.verify_plaintext(&plaintext)?;
    println!("   decrypted: {:?}", std::str::from_utf8(&plaintext)?);

    println!("\n== 6. The wrong key is a clear error, never garbage");
    let wrong_shares: Vec<_> = key_shares[..t]
        .iter()
        .map(|k| k.sign(b"another identity"))
        .collect();
    let wrong_key = key_set.combine(b"another identity", &wrong_shares)?;
    match ibe::decrypt(&ciphertext, &wrong_key) {
        Err(e) => println!("   decrypt refused: {e}"),
        Ok(_) => return Err("decrypted with the wrong key".into()),
    }

    println!("\nDone.");
    Ok(())
}
