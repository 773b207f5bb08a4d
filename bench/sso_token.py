"""bench/sso_token.py — an SSO identity for the benchmark's authenticated reads.

Usage: /usr/bin/python3 bench/sso_token.py JWKS_OUT ISSUER
Makes a fresh RSA-2048 key (RS256: the cheapest algorithm itpmd accepts to
verify), writes its public half as a JWKS file for itpmd's [sso] jwks_file,
and prints one compact RS256 token valid for 4 hours. The private key is never
written to disk.
"""
import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    jwks_path, issuer = sys.argv[1], sys.argv[2]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_numbers()
    kid = "itpm-bench"
    jwks = {"keys": [{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                      "n": b64url(uint(pub.n)), "e": b64url(uint(pub.e))}]}
    with open(jwks_path, "w", encoding="ascii") as f:
        json.dump(jwks, f)
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    claims = {"iss": issuer, "aud": "itpm", "sub": "bench", "name": "bench",
              "unit": "321322-AGRI", "region": "321322", "roles": ["submitter"],
              "iat": now, "nbf": now - 60, "exp": now + 4 * 3600}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    print(signing_input + "." + b64url(signature))
    return 0


if __name__ == "__main__":
    sys.exit(main())
