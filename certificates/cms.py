"""Verifying a detached CMS (PKCS#7) SignedData over a file: the signature file that comes with a
message on the file channel.

asn1crypto parses the structure, cryptography does the mathematics (cryptography has no CMS
verification API). Supported: SHA-256 (and the stronger SHA-384/SHA-512), RSA with PKCS#1 v1.5 or
PSS, ECDSA; with signed attributes (the messageDigest attribute must equal the file's digest, and
the signature covers the DER SET OF the signed attributes, RFC 5652 §5.4) or without (the signature
covers the file itself). Exactly one signer; the content must not be embedded (detached).

The signature is checked over the file's exact bytes: a signature made in S/MIME text mode (the
content converted to CRLF line ends, `openssl cms -sign` without `-binary`) does not verify, and the
error says so. Accepting it would let two different files share one signature.

This module verifies the mathematics and finds the signer's certificate; whether that certificate
is registered, active and allowed to sign is the caller's question (see filechannel.operations).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from asn1crypto import cms, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

MAX_SIGNATURE_BYTES = 64 * 1024
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


class CmsError(ValueError):
    """The signature file is refused. `code` says why, for the caller's message and tests:
    malformed-signature, not-detached, unsupported-algorithm, signer-not-found, digest-mismatch,
    signature-invalid."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignerId:
    """How the SignerInfo names its certificate (RFC 5652 §5.3): issuer and serial number, or the
    subject key identifier."""

    issuer: asn1_x509.Name | None = None
    serial_number: int | None = None
    key_identifier: bytes | None = None

    def matches(self, certificate: asn1_x509.Certificate) -> bool:
        if self.key_identifier is not None:
            return certificate.key_identifier == self.key_identifier
        return certificate.serial_number == self.serial_number and certificate.issuer == self.issuer

    def describe(self) -> str:
        if self.key_identifier is not None:
            return f"subject key identifier {self.key_identifier.hex()}"
        return f"serial number {self.serial_number:x} of {self.issuer.human_friendly}"


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified over the file, and what it was made with."""

    signer: x509.Certificate
    digest_algorithm: str         # sha256, sha384, sha512
    signature_algorithm: str      # rsassa_pkcs1v15, rsassa_pss, ecdsa
    signed_attributes: bool
    signing_time: datetime | None
    content_sha256: str


@dataclass(frozen=True)
class DetachedSignature:
    """A parsed detached SignedData with exactly one signer, not yet verified."""

    signer_id: SignerId
    embedded: tuple[asn1_x509.Certificate, ...]
    digest_algorithm: str
    signature_algorithm: cms.SignedDigestAlgorithm
    signed_attrs: cms.CMSAttributes | None
    signature: bytes

    def verify(self, content: bytes, candidates: Iterable[x509.Certificate] = ()) -> VerifiedSignature:
        """Verify over `content`. The signer's certificate is taken from those embedded in the
        signature, else from `candidates` (for a signature made without certificates)."""
        matching = [c for c in (*self.embedded, *(_to_asn1(c) for c in candidates)) if self.signer_id.matches(c)]
        if not matching:
            raise CmsError("signer-not-found", "the signature names a certificate "
                           f"({self.signer_id.describe()}) that is neither in the signature nor known")
        digest = hashlib.new(self.digest_algorithm, content).digest()
        signing_time = None
        if self.signed_attrs is not None:
            message_digest, signing_time = _check_signed_attributes(self.signed_attrs)
            if message_digest != digest:
                raise CmsError("digest-mismatch", "the file's digest differs from the messageDigest the signature "
                               "covers: the file was changed after signing (or signed in text mode: sign the "
                               "exact bytes, e.g. openssl cms -sign -binary)")
            # RFC 5652 §5.4: the signature covers the attributes as a SET OF (tag 0x31), not as the
            # [0] IMPLICIT field they are sent in. Re-tag the bytes as received.
            signed = b"\x31" + self.signed_attrs.dump()[1:]
        else:
            signed = content
        algorithm = self.signature_algorithm.signature_algo
        for certificate in matching:
            try:
                cert = x509.load_der_x509_certificate(certificate.dump())
            except ValueError:
                continue
            if _signature_verifies(cert, self.signature_algorithm, self.digest_algorithm, signed, self.signature):
                return VerifiedSignature(cert, self.digest_algorithm, algorithm, self.signed_attrs is not None,
                                         signing_time, hashlib.sha256(content).hexdigest())
        if self.signed_attrs is not None:
            raise CmsError("signature-invalid", "the signature does not verify with the signer's certificate")
        raise CmsError("signature-invalid", "the signature does not verify over this file with the signer's "
                       "certificate: the file was changed after signing (or signed in text mode: sign the "
                       "exact bytes, e.g. openssl cms -sign -binary)")


def parse_detached(blob: bytes) -> DetachedSignature:
    """Parse a detached CMS SignedData (DER, or PEM-armoured). Raises CmsError."""
    if not blob:
        raise CmsError("malformed-signature", "the signature is empty")
    if len(blob) > MAX_SIGNATURE_BYTES:
        raise CmsError("malformed-signature", f"a signature is at most {MAX_SIGNATURE_BYTES // 1024} KB")
    try:
        if pem.detect(blob):
            _, _, blob = pem.unarmor(blob)
        info = cms.ContentInfo.load(blob, strict=True)
        if info["content_type"].native != "signed_data":
            raise CmsError("malformed-signature", "the signature is not a CMS SignedData")
        signed_data = info["content"]
        encapsulated = signed_data["encap_content_info"]
        if encapsulated["content_type"].native != "data":
            raise CmsError("unsupported-algorithm", "the signature must be over data (id-data)")
        if encapsulated["content"].native is not None:
            raise CmsError("not-detached", "the signature embeds the content: send a detached signature")
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise CmsError("malformed-signature", f"the signature has {len(signer_infos)} signers; exactly one "
                                                  "is required")
        signer_info = signer_infos[0]
        digest_algorithm = signer_info["digest_algorithm"]["algorithm"].native
        if digest_algorithm not in HASHES:
            raise CmsError("unsupported-algorithm", f"digest algorithm {digest_algorithm} is not accepted; use "
                                                    "SHA-256")
        signature_algorithm = signer_info["signature_algorithm"]
        try:
            if signature_algorithm.signature_algo not in ("rsassa_pkcs1v15", "rsassa_pss", "ecdsa"):
                raise ValueError
        except ValueError:
            raise CmsError("unsupported-algorithm", f"signature algorithm {signature_algorithm['algorithm'].native} "
                                                    "is not accepted; use RSA (PKCS#1 v1.5 or PSS) or ECDSA") from None
        signed_attrs = signer_info["signed_attrs"]
        embedded = tuple(choice.chosen for choice in (signed_data["certificates"] or [])
                         if choice.name == "certificate")
        return DetachedSignature(_signer_id(signer_info["sid"]), embedded, digest_algorithm, signature_algorithm,
                                 signed_attrs if len(signed_attrs) else None, signer_info["signature"].native)
    except CmsError:
        raise
    except _ASN1_ERRORS:
        raise CmsError("malformed-signature", "the signature is not a valid CMS/PKCS#7 SignedData (DER)") from None


def verify_detached(content: bytes, signature: bytes,
                    candidates: Iterable[x509.Certificate] = ()) -> VerifiedSignature:
    """Parse and verify in one call. Raises CmsError."""
    return parse_detached(signature).verify(content, candidates)


def _signer_id(sid: cms.SignerIdentifier) -> SignerId:
    if sid.name == "subject_key_identifier":
        return SignerId(key_identifier=sid.chosen.native)
    chosen = sid.chosen
    return SignerId(issuer=chosen["issuer"], serial_number=chosen["serial_number"].native)


def _check_signed_attributes(attrs: cms.CMSAttributes) -> tuple[bytes, datetime | None]:
    """RFC 5652 §5.3: content-type (id-data) and exactly one message-digest; signing-time if sent."""
    try:
        seen: dict[str, list] = {}
        for attribute in attrs:
            seen.setdefault(attribute["type"].native, []).append(attribute["values"])
        digests = seen.get("message_digest", [])
        if len(digests) != 1 or len(digests[0]) != 1:
            raise CmsError("malformed-signature", "the signed attributes must hold exactly one messageDigest")
        content_types = seen.get("content_type", [])
        if len(content_types) != 1 or len(content_types[0]) != 1 or content_types[0][0].native != "data":
            raise CmsError("malformed-signature", "the signed attributes must hold the content type id-data")
        times = seen.get("signing_time", [])
        signing_time = times[0][0].native if len(times) == 1 and len(times[0]) == 1 else None
        return digests[0][0].native, signing_time
    except CmsError:
        raise
    except _ASN1_ERRORS:
        raise CmsError("malformed-signature", "the signed attributes are not valid") from None


def _hash(name: str) -> hashes.HashAlgorithm:
    if name not in HASHES:
        raise CmsError("unsupported-algorithm", f"hash algorithm {name} is not accepted; use SHA-256")
    return HASHES[name]()


def _signature_verifies(cert: x509.Certificate, algorithm: cms.SignedDigestAlgorithm, digest_algorithm: str,
                        signed: bytes, signature: bytes) -> bool:
    key = cert.public_key()
    kind = algorithm.signature_algo
    try:
        # The OID may name the hash (sha256WithRSAEncryption, ecdsa-with-SHA256) or not
        # (rsaEncryption, RFC 5754 §3.2): then it is the digest algorithm's.
        hash_name = algorithm.hash_algo
    except ValueError:
        hash_name = digest_algorithm
    try:
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), _hash(hash_name))
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, _pss(algorithm), _hash(hash_name))
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(_hash(hash_name)))
        else:
            return False  # the algorithm does not fit the certificate's key
    except InvalidSignature:
        return False
    return True


def _pss(algorithm: cms.SignedDigestAlgorithm) -> padding.PSS:
    try:
        params = algorithm["parameters"]
        mask = params["mask_gen_algorithm"]
        if mask["algorithm"].native != "mgf1" or params["trailer_field"].native != "trailer_field_bc":
            raise CmsError("unsupported-algorithm", "RSASSA-PSS is accepted with MGF1 and the standard trailer only")
        return padding.PSS(mgf=padding.MGF1(_hash(mask["parameters"]["algorithm"].native)),
                           salt_length=params["salt_length"].native)
    except CmsError:
        raise
    except _ASN1_ERRORS:
        raise CmsError("malformed-signature", "the RSASSA-PSS parameters are not valid") from None


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
