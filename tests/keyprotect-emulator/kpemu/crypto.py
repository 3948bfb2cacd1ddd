"""The emulator's cryptography: its own ciphertext format, derived from key
material so that two root keys holding the same material unwrap each
other's ciphertexts (KEYPROTECT.md §3.1, §5.2); secure import (RSA-OAEP-SHA-256
of the material, AES-GCM of the import token's nonce); a throwaway TLS CA."""
import base64
import binascii
import datetime
import json
import ipaddress
import os

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

CIPHERTEXT_VERSION = "4.0.0"


def b64d(text):
    """Strict base64 decoding; ValueError on anything that is not."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError("not base64") from e


def b64e(data):
    return base64.b64encode(data).decode("ascii")


def _aad_bytes(aad):
    return json.dumps(aad, separators=(",", ":")).encode() if aad else None


def wrap(material, version_id, dek, aad):
    """b64(JSON{ciphertext, iv, version, handle}), as in fixture F11."""
    iv = os.urandom(12)
    ct = AESGCM(material).encrypt(iv, dek, _aad_bytes(aad))
    inner = {"ciphertext": b64e(ct), "iv": b64e(iv), "version": CIPHERTEXT_VERSION,
             "handle": version_id}
    return b64e(json.dumps(inner, separators=(",", ":")).encode())


def parse_ciphertext(ciphertext):
    """(handle, iv, ct) of a ciphertext; ValueError when it is not ours."""
    inner = json.loads(b64d(ciphertext))
    if not isinstance(inner, dict) or inner.get("version") != CIPHERTEXT_VERSION:
        raise ValueError("unknown ciphertext version")
    iv, ct = b64d(inner.get("iv")), b64d(inner.get("ciphertext"))
    if len(iv) != 12 or len(ct) < 16 or not isinstance(inner.get("handle"), str):
        raise ValueError("malformed ciphertext")
    return inner["handle"], iv, ct


def unwrap_with(material, iv, ct, aad):
    """The DEK, or None when this material (or the AAD) does not fit."""
    try:
        return AESGCM(material).decrypt(iv, ct, _aad_bytes(aad))
    except InvalidTag:
        return None


class ImportKeyPair:
    """The RSA-4096 key pair behind an import token."""

    def __init__(self):
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=4096)

    def public_pem(self):
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def decrypt(self, ciphertext):
        """RSAES-OAEP-SHA-256 decryption; None when it fails."""
        try:
            return self._key.decrypt(ciphertext, padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        except ValueError:
            return None


def nonce_matches(material, iv, encrypted_nonce, nonce):
    """True when encrypted_nonce is AES-GCM(material, iv, nonce) with no AAD."""
    return unwrap_with(material, iv, encrypted_nonce, None) == nonce


def make_tls(directory):
    """A fresh CA (ca.crt) and a server certificate for localhost/127.0.0.1
    signed by it; returns (cert_chain_path, key_path, ca_path)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Key Protect emulator CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(
        ipaddress.ip_address("127.0.0.1"))])
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = [os.path.join(directory, n) for n in ("server-chain.pem", "server.key", "ca.crt")]
    with open(paths[0], "wb") as f:
        f.write(leaf.public_bytes(pem) + ca.public_bytes(pem))
    with open(os.open(paths[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(paths[2], "wb") as f:
        f.write(ca.public_bytes(pem))
    return paths
