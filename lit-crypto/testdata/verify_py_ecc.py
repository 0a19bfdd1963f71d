"""Checks the BLS signatures of the test vectors with py_ecc, an independent pure-Python
implementation of the IETF BLS signature draft (ciphersuite BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_).

Usage: python3 -m venv .tools/venv && .tools/venv/bin/pip install py_ecc==8.0.0
       .tools/venv/bin/python lit-crypto/testdata/verify_py_ecc.py
"""
import json
import pathlib
import sys

from py_ecc.bls import G2ProofOfPossession as bls

here = pathlib.Path(__file__).parent
ok = True

v = json.loads((here / "bls_threshold_vector.json").read_text())
pk, msg, sig = (bytes.fromhex(v[k]) for k in ("public_key", "message", "signature"))
good = bls.Verify(pk, msg, sig)
bad = bls.Verify(pk, msg + b"!", sig)
print(f"bls_threshold_vector.json: Verify={good}, Verify(altered message)={bad}")
ok &= good and not bad

v = json.loads((here / "ibe_v1.json").read_text())
pk = bytes.fromhex(v["public_key"])
key = bytes.fromhex(v["decryption_key"])
ident = v["identity"].encode()
good = bls.Verify(pk, ident, key)
sk = int(v["secret_key"], 16)
same_pk = bls.SkToPk(sk) == pk
same_sig = bls.Sign(sk, ident) == key
print(f"ibe_v1.json decryption key: Verify={good}, SkToPk matches={same_pk}, Sign matches={same_sig}")
ok &= good and same_pk and same_sig

sys.exit(0 if ok else 1)
