#!/bin/sh
# Generates the FAKE AMD-like chain used by the negative tests. TEST KEYS ONLY: these keys are
# public, never trust them. Requires the openssl CLI (3.x). Re-running produces new keys; the
# tests read whatever is checked in.
set -eu
cd "$(dirname "$0")"
DN="/OU=Engineering/C=US/L=Santa Clara/ST=CA/O=Advanced Micro Devices"
PSS="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384 -sha384"
DAYS=3650
# Chip id of the fake chip (64 bytes), and another one.
CHIP=$(printf '%s' "lit-attest fake chip" | openssl dgst -sha512 -r | cut -c1-128)
OTHER=$(printf '%s' "another chip" | openssl dgst -sha512 -r | cut -c1-128)
echo "$CHIP" > chip_id.hex

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out ark.key 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out ask.key 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out vcek.key 2>/dev/null

cat > ca.cnf <<CNF
[ca_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
openssl req -new -x509 -key ark.key -subj "$DN/CN=ARK-Genoa" -days $DAYS $PSS \
  -config ca.cnf -extensions ca_ext -out ark.pem
openssl req -new -key ask.key -subj "$DN/CN=SEV-Genoa" -out ask.csr
openssl x509 -req -in ask.csr -CA ark.pem -CAkey ark.key -set_serial 2 -days $DAYS $PSS \
  -extfile ca.cnf -extensions ca_ext -out ask.pem

vcek() { # name snpSPL hwid-spec
  cat > vcek.cnf <<CNF
[vcek_ext]
1.3.6.1.4.1.3704.1.1 = ASN1:INTEGER:1
1.3.6.1.4.1.3704.1.2 = ASN1:IA5STRING:Genoa
1.3.6.1.4.1.3704.1.3.1 = ASN1:INTEGER:10
1.3.6.1.4.1.3704.1.3.2 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.3 = ASN1:INTEGER:$2
1.3.6.1.4.1.3704.1.3.8 = ASN1:INTEGER:84
1.3.6.1.4.1.3704.1.4 = $3
CNF
  openssl req -new -key vcek.key -subj "$DN/CN=SEV-VCEK" -out vcek.csr
  openssl x509 -req -in vcek.csr -CA ask.pem -CAkey ask.key -set_serial 0 -days $DAYS $PSS \
    -extfile vcek.cnf -extensions vcek_ext -outform DER -out "$1"
}
vcek vcek.der 25 "DER:$CHIP"                              # matches the fake report
vcek vcek_wrapped_hwid.der 25 "ASN1:FORMAT:HEX,OCTETSTRING:$CHIP"   # hwID DER-wrapped
vcek vcek_bad_tcb.der 24 "DER:$CHIP"                      # snpSPL differs from the report
vcek vcek_bad_hwid.der 25 "DER:$OTHER"                    # hwID of another chip
openssl x509 -in ark.pem -outform DER -out ark.der
openssl x509 -in ask.pem -outform DER -out ask.der
rm -f ask.csr vcek.csr vcek.cnf ca.cnf ark.srl ask.srl
