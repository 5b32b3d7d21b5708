"""A machine client of the portal's API, in plain Python: requests and cryptography, no OAuth library.

It does what any enterprise's system does:

1. read its qualified certificate (PEM or DER) and the certificate's private key (PEM, optionally
   encrypted) from files;
2. build a client assertion (RFC 7523): a JWS signed with the key (ES256 for an EC P-256 key, PS256 or
   RS256 for RSA), whose header `kid` is the certificate's SHA-256 thumbprint and whose claims are
   iss = sub = the client_id, aud = the token endpoint, iat/exp one minute apart and a fresh jti;
3. POST it to /oauth/token with grant_type=client_credentials (RFC 6749 §4.4) and get a bearer token;
4. call the API with `Authorization: Bearer <token>`, asking a new token when it expired.

The local administrator registered the client first (POST /api/v1/enterprises/{id}/api-clients), which
gave the client_id. Example:

    python -m examples.api_client --portal https://portal.example --client-id 3f6c... \\
        --certificate seal.pem --key seal-key.pem --key-password-env SEAL_KEY_PASSWORD \\
        --scope werkgeversrepertorium_beveiligd /api/v1/enterprises/12/repertory
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_PATH = "/oauth/token"


# --- files ---------------------------------------------------------------------------------------


def load_certificate(path: str) -> x509.Certificate:
    """The client's certificate: the first one of a PEM file (a chain may follow), or DER."""
    data = Path(path).read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)[0]
    return x509.load_der_x509_certificate(data)


def load_private_key(path: str, password: bytes | None = None):
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return serialization.load_pem_private_key(data, password)
    return serialization.load_der_private_key(data, password)


def thumbprint(certificate: x509.Certificate) -> str:
    """The certificate's SHA-256 thumbprint in lowercase hex: the portal's `kid`."""
    return certificate.fingerprint(hashes.SHA256()).hex()


# --- the client assertion (a compact JWS, RFC 7515) ------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def default_algorithm(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return "ES256"
    raise ValueError("the key must be RSA or EC P-256")


def sign_jws(key, alg: str, header: dict[str, Any], claims: dict[str, Any]) -> str:
    header = {**header, "alg": alg}
    signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64url(json.dumps(claims, separators=(",", ":")).encode())).encode("ascii")
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants r || s, not DER (RFC 7518 §3.4)
    elif alg == "RS256":
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        signature = key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                        salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    else:
        raise ValueError(f"unsupported alg {alg}")
    return signing_input.decode("ascii") + "." + _b64url(signature)


def client_assertion(client_id: str, token_url: str, certificate: x509.Certificate, key, *,
                     issued_at: float | None = None, lifetime: int = 60, jti: str | None = None,
                     alg: str | None = None, kid: str | None = None) -> str:
    """A private_key_jwt client assertion for one token request."""
    now = int(time.time() if issued_at is None else issued_at)
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + lifetime,
              "jti": jti or str(uuid.uuid4())}
    return sign_jws(key, alg or default_algorithm(key), {"typ": "JWT", "kid": kid or thumbprint(certificate)},
                    claims)


# --- the client ----------------------------------------------------------------------------------


class TokenError(Exception):
    """The token endpoint refused: `error` is the RFC 6749 code, `description` says why."""

    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status, self.error, self.description = status, error, description


class PortalApiClient:
    """Gets and renews a bearer token with the certificate's key, and calls the API with it."""

    def __init__(self, portal_url: str, client_id: str, certificate: x509.Certificate, key, *,
                 scopes: list[str] | None = None, http: requests.Session | None = None,
                 clock: Callable[[], float] | None = None, timeout: float = 30) -> None:
        self.portal_url = portal_url.rstrip("/")
        self.token_url = self.portal_url + TOKEN_PATH
        self.client_id, self.certificate, self.key = client_id, certificate, key
        self.scopes = scopes or []
        self.http = http or requests.Session()
        self.clock, self.timeout = clock or time.time, timeout
        self._token: str | None = None
        self._token_expires = 0.0

    def fetch_token(self) -> dict[str, Any]:
        data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(self.client_id, self.token_url, self.certificate, self.key,
                                                     issued_at=self.clock())}
        if self.scopes:
            data["scope"] = " ".join(self.scopes)
        response = self.http.post(self.token_url, data=data, timeout=self.timeout)
        body = response.json()
        if response.status_code != 200:
            raise TokenError(response.status_code, body.get("error", "?"), body.get("error_description"))
        self._token = body["access_token"]
        self._token_expires = self.clock() + int(body.get("expires_in", 60)) - 10
        return body

    def token(self) -> str:
        if self._token is None or self.clock() >= self._token_expires:
            self.fetch_token()
        return self._token

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.token()}"}
        response = self.http.request(method, self.portal_url + path, headers=headers, timeout=self.timeout,
                                     **kwargs)
        if response.status_code == 401 and "invalid_token" in response.headers.get("WWW-Authenticate", ""):
            self._token = None  # expired or revoked meanwhile: one new token, one retry
            headers["Authorization"] = f"Bearer {self.token()}"
            response = self.http.request(method, self.portal_url + path, headers=headers, timeout=self.timeout,
                                         **kwargs)
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portal", required=True, help="the portal's base URL, e.g. https://portal.example")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--certificate", required=True, help="the client's certificate (PEM or DER)")
    parser.add_argument("--key", required=True, help="the certificate's private key (PEM or DER)")
    parser.add_argument("--key-password-env", help="environment variable holding the key's password")
    parser.add_argument("--scope", action="append", default=[], help="an application code (repeatable)")
    parser.add_argument("path", help="the API path to GET, e.g. /api/v1/enterprises/12/repertory")
    args = parser.parse_args(argv)
    password = os.environ[args.key_password_env].encode() if args.key_password_env else None
    client = PortalApiClient(args.portal, args.client_id, load_certificate(args.certificate),
                             load_private_key(args.key, password), scopes=args.scope)
    try:
        response = client.get(args.path)
    except TokenError as error:
        print(f"token refused: {error}", file=sys.stderr)
        return 2
    print(json.dumps(response.json(), indent=2, ensure_ascii=False))
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
