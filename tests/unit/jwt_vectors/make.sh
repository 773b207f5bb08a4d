#!/bin/sh
# Regenerates the JWT/JWKS test vectors in this folder.
#
# Deliberately independent of the project's code: keys come from the `openssl`
# command, the JWKS and the tokens from python3-jwt (PyJWT) and
# python3-cryptography, so the C verifier is checked against another
# implementation. Odd tokens that PyJWT refuses to make (alg none, HS256 keyed
# with the RSA public key, duplicate members, raw r=s=0 signatures...) are
# assembled by hand below with the same libraries.
#
# Private keys live only in a temporary folder and are deleted; what is kept:
# the public keys (PEM), jwks*.json and tokens/*.jwt (no trailing newline).
# Tokens expire in 2100 unless the vector is about time, so they stay valid.
#
# Needs: openssl, /usr/bin/python3 with python3-jwt and python3-cryptography
# (apt-get install -y openssl python3-jwt python3-cryptography).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.pem"
openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec.pem"
openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$tmp/rsa1024.pem"
openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$tmp/p384.pem"
openssl pkey -in "$tmp/rsa.pem" -pubout -out "$here/rsa-public.pem"
openssl pkey -in "$tmp/ec.pem" -pubout -out "$here/ec-public.pem"

rm -rf "$here/tokens"
mkdir -p "$here/tokens"

/usr/bin/python3 - "$here" "$tmp" <<'PY'
import base64, hashlib, hmac, json, sys

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

here, tmp = sys.argv[1], sys.argv[2]

def load(name):
    with open(f"{tmp}/{name}", "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)

rsa_key, ec_key = load("rsa.pem"), load("ec.pem")
rsa1024, p384 = load("rsa1024.pem"), load("p384.pem")
with open(f"{here}/rsa-public.pem", "rb") as f:
    rsa_pub_pem = f.read()

RSA_KID, EC_KID = "rsa-2026-1", "ec-2026-1"
ISS, AUD = "https://sso.example.gov", "itpm"
IAT, NBF, EXP = 1764000000, 1764000000, 4102444800  # 2025-11-24 .. 2100-01-01
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def uint(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return b64(n.to_bytes(size, "big"))

def merged(base, extra):
    """base with extra applied; a None value removes the member."""
    d = dict(base)
    for k, v in extra.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d

def rsa_jwk(key, kid, **extra):
    pub = key.public_key().public_numbers()
    return merged(dict(kty="RSA", kid=kid, use="sig", alg="RS256", n=uint(pub.n), e=uint(pub.e)), extra)

def ec_jwk(key, kid, crv="P-256", size=32, **extra):
    pub = key.public_key().public_numbers()
    return merged(dict(kty="EC", kid=kid, use="sig", alg="ES256", crv=crv,
                       x=uint(pub.x, size), y=uint(pub.y, size)), extra)

def write(name, text):
    with open(f"{here}/{name}", "w") as f:
        f.write(text)

def jwks(*keys):
    return json.dumps({"keys": list(keys)}, indent=1) + "\n"

good_rsa, good_ec = rsa_jwk(rsa_key, RSA_KID), ec_jwk(ec_key, EC_KID)
write("jwks.json", jwks(good_rsa, good_ec))

# JWKS files jwks_load must refuse.
write("jwks-bad-json.json", '{"keys": [' + json.dumps(good_rsa) + ',]}\n')
write("jwks-trailing.json", jwks(good_rsa) + "garbage\n")
write("jwks-not-object.json", "[" + json.dumps(good_rsa) + "]\n")
write("jwks-empty.json", '{"keys": []}\n')
write("jwks-dup-kid.json", jwks(good_rsa, dict(good_ec, kid=RSA_KID)))
dup = json.dumps(good_rsa)
write("jwks-dup-member.json", '{"keys": [' + dup[:-1] + ', "kid": "other-1"}]}\n')
write("jwks-rsa-1024.json", jwks(rsa_jwk(rsa1024, "rsa-1024")))
write("jwks-p384.json", jwks(ec_jwk(p384, "p384", crv="P-384", size=48, alg=None)))
write("jwks-p384-as-p256.json", jwks(ec_jwk(p384, "p384", size=48)))
write("jwks-private-rsa.json", jwks(dict(good_rsa, d="AQAB")))
write("jwks-private-ec.json", jwks(dict(good_ec, d="AQAB")))
write("jwks-alg-mismatch.json", jwks(dict(good_rsa, alg="ES256")))
write("jwks-alg-hs256.json", jwks(dict(good_rsa, alg="HS256")))
write("jwks-use-enc.json", jwks(dict(good_rsa, use="enc")))
write("jwks-no-kid.json", jwks(merged(good_rsa, dict(kid=None))))
write("jwks-bad-kid.json", jwks(dict(good_rsa, kid="../etc/passwd")))
write("jwks-oct.json", jwks(dict(kty="oct", kid="hmac-1", k="c2VjcmV0")))
write("jwks-ec-short-x.json", jwks(dict(good_ec, x=b64(base64.urlsafe_b64decode(good_ec["x"] + "=")[1:]))))
pub = ec_key.public_key().public_numbers()
write("jwks-ec-off-curve.json", jwks(dict(good_ec, y=uint((pub.y + 1) % (2**256 - 2**224 + 2**192 + 2**96 - 1), 32))))
rsa_pub = rsa_key.public_key().public_numbers()
write("jwks-rsa-even-n.json", jwks(dict(good_rsa, n=uint(rsa_pub.n + 1))))
write("jwks-rsa-e1.json", jwks(dict(good_rsa, e="AQ")))
write("jwks-b64-padded.json", jwks(dict(good_rsa, e=good_rsa["e"] + "=")))

# Tokens.
BASE = dict(iss=ISS, aud=AUD, sub="jdoe", name="Jane Doe", unit="U-0042", region="CITY",
            roles=["submitter", "cdo"], iat=IAT, nbf=NBF, exp=EXP)

def claims(**kw):
    return merged(BASE, kw)

def save(name, token):
    if isinstance(token, bytes):
        token = token.decode()
    with open(f"{here}/tokens/{name}.jwt", "w") as f:
        f.write(token)

def rs(c, kid=RSA_KID, alg="RS256", **headers):
    return jwt.encode(c, rsa_key, algorithm=alg, headers=dict(kid=kid, **headers))

def es(c, kid=EC_KID, **headers):
    return jwt.encode(c, ec_key, algorithm="ES256", headers=dict(kid=kid, **headers))

def raw_rsa(header, payload, alg_hash=hashes.SHA256()):
    """Signs raw header and payload text (for JSON PyJWT would not write)."""
    si = (b64(header.encode()) + "." + b64(payload.encode())).encode()
    sig = rsa_key.sign(si, padding.PKCS1v15(), alg_hash)
    return si.decode() + "." + b64(sig)

def raw_es(header, payload, sig_fn):
    si = (b64(header.encode()) + "." + b64(payload.encode())).encode()
    return si.decode() + "." + b64(sig_fn(si))

def es_raw_sig(si):
    r, s = decode_dss_signature(ec_key.sign(si, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")

payload = json.dumps(BASE, separators=(",", ":"))
rsa_hdr = json.dumps(dict(alg="RS256", kid=RSA_KID, typ="JWT"), separators=(",", ":"))
ec_hdr = json.dumps(dict(alg="ES256", kid=EC_KID, typ="JWT"), separators=(",", ":"))

save("rs256_valid", rs(BASE))
save("es256_valid", es(claims(aud=["portal", AUD], clearance="classified", roles=["reviewer"],
                              region="C01", name=None, nbf=None)))
save("rs256_minimal", jwt.encode(dict(iss=ISS, aud=AUD, sub="m", unit="U", region="R", roles=[], exp=EXP),
                                 rsa_key, algorithm="RS256", headers=dict(kid=RSA_KID)))
save("es256_raw_check", raw_es(ec_hdr, payload, es_raw_sig))
save("typ_lowercase", raw_rsa(json.dumps(dict(alg="RS256", kid=RSA_KID, typ="jwt")), payload))
save("no_typ", raw_rsa(json.dumps(dict(alg="RS256", kid=RSA_KID)), payload))
save("roles_max", rs(claims(roles=[("r%02d" % i) + "x" * 29 for i in range(16)])))
save("clearance_other", rs(claims(clearance="public")))
save("sub_max", rs(claims(sub="s" * 128, unit="u" * 32, region="r" * 8, name="n" * 128)))

# Algorithm confusion and header attacks.
save("alg_none", b64(json.dumps(dict(alg="none", kid=RSA_KID, typ="JWT")).encode()) + "." + b64(payload.encode()) + ".")
hs_hdr = json.dumps(dict(alg="HS256", kid=RSA_KID, typ="JWT"))
hs_si = b64(hs_hdr.encode()) + "." + b64(payload.encode())
save("hs256_pubkey", hs_si + "." + b64(hmac.new(rsa_pub_pem, hs_si.encode(), hashlib.sha256).digest()))
save("alg_none_sig", b64(json.dumps(dict(alg="none", kid=RSA_KID)).encode()) + "." + b64(payload.encode())
     + "." + rs(BASE).split(".")[2])
save("rs384", rs(BASE, alg="RS384"))
save("ps256", rs(BASE, alg="PS256"))
save("alg_lowercase", raw_rsa(json.dumps(dict(alg="rs256", kid=RSA_KID)), payload))
save("unknown_kid", rs(BASE, kid="rsa-2099-9"))
save("no_kid", jwt.encode(BASE, rsa_key, algorithm="RS256"))
save("kid_traversal", rs(BASE, kid="../../etc/passwd"))
save("kid_sqli", rs(BASE, kid="' OR 1=1 --"))
save("es256_with_rsa_kid", es(BASE, kid=RSA_KID))
save("rs256_with_ec_kid", rs(BASE, kid=EC_KID))
save("header_jku", rs(BASE, jku="https://attacker.example/jwks.json"))
save("header_x5u", rs(BASE, x5u="https://attacker.example/cert.pem"))
save("header_jwk", rs(BASE, jwk=dict(kty="oct", k="c2VjcmV0")))
save("header_x5c", rs(BASE, x5c=["MIIB"]))
save("header_x5t", rs(BASE, x5t="aGFzaA"))
save("header_crit", rs(BASE, crit=["exp"], exp=EXP))
save("header_crit_empty", rs(BASE, crit=[]))
save("typ_wrong", rs(BASE, typ="at+jwt"))
save("dup_alg", raw_rsa('{"alg":"RS256","kid":"%s","alg":"none","typ":"JWT"}' % RSA_KID, payload))
save("dup_claim", raw_rsa(rsa_hdr, payload[:-1] + ',"sub":"admin"}'))
save("dup_nested", raw_rsa(rsa_hdr, payload[:-1] + ',"x":{"a":1,"a":2}}'))

# Signatures.
save("es256_zero_sig", raw_es(ec_hdr, payload, lambda si: bytes(64)))
save("es256_r_eq_n", raw_es(ec_hdr, payload, lambda si: P256_N.to_bytes(32, "big") + (1).to_bytes(32, "big")))
save("es256_der", raw_es(ec_hdr, payload, lambda si: ec_key.sign(si, ec.ECDSA(hashes.SHA256()))))
good = rs(BASE)
h, p, s = good.split(".")
tampered = json.loads(base64.urlsafe_b64decode(p + "=="))
tampered["roles"] = ["admin"]
save("tampered", h + "." + b64(json.dumps(tampered, separators=(",", ":")).encode()) + "." + s)
save("bad_b64_padded", good + "==")

# Claims.
save("expired", rs(claims(exp=1600000000, nbf=None, iat=1599990000)))
save("not_yet_valid", rs(claims(nbf=4000000000)))
save("wrong_iss", rs(claims(iss="https://sso.example.gov.evil")))
save("wrong_aud", rs(claims(aud="portal")))
save("aud_array_without", rs(claims(aud=["portal", "itpm2"])))
save("missing_exp", rs(claims(exp=None)))
save("missing_iss", rs(claims(iss=None)))
save("missing_aud", rs(claims(aud=None)))
save("exp_string", rs(claims(exp=str(EXP))))
save("exp_real", raw_rsa(rsa_hdr, payload.replace('"exp":%d' % EXP, '"exp":%d.5' % EXP)))
save("nbf_real", raw_rsa(rsa_hdr, payload.replace('"nbf":%d' % NBF, '"nbf":%d.5' % NBF)))
save("exp_negative", rs(claims(exp=-1)))
save("nbf_string", rs(claims(nbf="0")))
save("iat_string", rs(claims(iat="0")))
save("sub_missing", rs(claims(sub=None)))
save("sub_empty", rs(claims(sub="")))
save("sub_too_long", rs(claims(sub="s" * 129)))
save("sub_number", rs(claims(sub=42)))
save("sub_control", rs(claims(sub="jdoe\nINFO fake log line")))
save("name_too_long", rs(claims(name="n" * 129)))
save("unit_missing", rs(claims(unit=None)))
save("unit_too_long", rs(claims(unit="u" * 33)))
save("region_missing", rs(claims(region=None)))
save("region_too_long", rs(claims(region="r" * 9)))
save("roles_missing", rs(claims(roles=None)))
save("roles_string", rs(claims(roles="admin")))
save("roles_too_many", rs(claims(roles=["r%d" % i for i in range(17)])))
save("role_too_long", rs(claims(roles=["r" * 33])))
save("role_number", rs(claims(roles=["cdo", 7])))
save("role_empty", rs(claims(roles=[""])))
save("clearance_number", rs(claims(clearance=1)))
save("payload_array", raw_rsa(rsa_hdr, "[" + payload + "]"))
save("payload_trailing", raw_rsa(rsa_hdr, payload + " x"))
save("payload_nul", raw_rsa(rsa_hdr, payload[:-1] + ',"x":"a\\u0000b"}'))
save("oversize", rs(claims(pad="x" * 9000)))

# Independent cross-check: PyJWT accepts the valid vectors with this JWKS.
keyset = jwt.PyJWKSet.from_dict(json.load(open(f"{here}/jwks.json")))
by_kid = {k.key_id: k.key for k in keyset.keys}
alg_of = {RSA_KID: "RS256", EC_KID: "ES256"}
for name in ("rs256_valid", "es256_valid", "rs256_minimal", "es256_raw_check", "roles_max"):
    tok = open(f"{here}/tokens/{name}.jwt").read()
    kid = jwt.get_unverified_header(tok)["kid"]
    jwt.decode(tok, by_kid[kid], algorithms=[alg_of[kid]], audience=AUD, issuer=ISS)
PY


# Seeds for tests/fuzz/fuzz_jwt.c: they must match the JWKS just written.
corpus="$here/../../fuzz/jwt_corpus"
mkdir -p "$corpus"
rm -f "$corpus"/*
for t in rs256_valid es256_valid rs256_minimal es256_der dup_alg header_jku alg_none \
         hs256_pubkey es256_zero_sig kid_sqli; do
    cp "$here/tokens/$t.jwt" "$corpus/$t"
done
echo "vectors written to $here and $corpus"
