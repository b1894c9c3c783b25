"""Makes DPoP proofs with Python's `cryptography` (an independent ES256 signer), for the
interop tests. Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"htm": "...", "htu": "...", "iat": N, "access_token"?: "...", "count"?: N, "key"?: "PEM"}
  -> {"proofs": ["...", ...], "thumbprint": "...", "key": "PEM"}: `count` proofs (default 1)
     by the given P-256 key (PKCS#8 PEM, as an earlier answer gave it) or a new one, each
     with its own jti; the thumbprint computed here (RFC 7638, hashlib).
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


req = json.load(sys.stdin)
if "key" in req:
    key = serialization.load_pem_private_key(req["key"].encode(), password=None)
else:
    key = ec.generate_private_key(ec.SECP256R1())
pem = key.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
numbers = key.public_key().public_numbers()
jwk = {
    "kty": "EC",
    "crv": "P-256",
    "x": b64(numbers.x.to_bytes(32, "big")),
    "y": b64(numbers.y.to_bytes(32, "big")),
}
canonical = json.dumps(
    {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
).encode()
thumbprint = b64(hashlib.sha256(canonical).digest())
header = b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).encode())
proofs = []
for _ in range(req.get("count", 1)):
    claims = {
        "jti": b64(os.urandom(16)),
        "htm": req["htm"],
        "htu": req["htu"],
        "iat": req["iat"],
    }
    if "access_token" in req:
        claims["ath"] = b64(hashlib.sha256(req["access_token"].encode()).digest())
    signing_input = header + "." + b64(json.dumps(claims).encode())
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    proofs.append(signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
json.dump({"proofs": proofs, "thumbprint": thumbprint, "key": pem}, sys.stdout)
