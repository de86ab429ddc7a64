"""Keys and certificates for a throwaway control plane, made in-process with ``cryptography``
(moto, a test dependency, already needs it), so nothing depends on an openssl binary's flags."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = ["write_ca_and_serving_cert", "write_rsa_key_pair", "write_self_signed"]

_PEM = serialization.Encoding.PEM


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        _PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def write_ca_and_serving_cert(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for 127.0.0.1/localhost signed by it, so clients verify
    TLS instead of skipping verification (which the Python client turns into a warning that
    the test suite treats as an error). Returns (ca.crt, name.crt, name.key)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("batchd-test-ca", ca_key, None, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key, ("batchd-test-ca", ca_key), ca=False)
    ca_path, cert_path, key_path = (
        directory / "ca.crt",
        directory / f"{name}.crt",
        directory / f"{name}.key",
    )
    ca_path.write_bytes(ca_cert.public_bytes(_PEM))
    cert_path.write_bytes(cert.public_bytes(_PEM))
    key_path.write_bytes(_key_pem(key))
    return ca_path, cert_path, key_path


def write_self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed serving certificate (the stand-in kubelet's; the apiserver does not verify
    kubelets unless given --kubelet-certificate-authority). Returns (name.crt, name.key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key, None, ca=False)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(_PEM))
    key_path.write_bytes(_key_pem(key))
    return cert_path, key_path


def write_rsa_key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """The service-account signing key pair the apiserver insists on. Returns (key, pub)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    private.write_bytes(_key_pem(key))
    public.write_bytes(
        key.public_key().public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public
