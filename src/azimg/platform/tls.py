"""A local CA and a server certificate, made once under the data directory.

The Azure SDK refuses bearer tokens over plain HTTP and MSAL forces certificate verification,
so the platform needs a real CA (basicConstraints CA:TRUE, keyCertSign) and a leaf with the
host in its SAN. ``bundle.pem`` is certifi's roots plus our CA: ``REQUESTS_CA_BUNDLE`` replaces
certifi, so the bundle must keep the public roots working for anything else in the process.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    bundle: Path  # certifi roots + our CA: the value for REQUESTS_CA_BUNDLE


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _make_ca(tls_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azimg local CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write_private(tls_dir / "ca.key", _key_pem(key))
    (tls_dir / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(tls_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((tls_dir / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((tls_dir / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _server_hosts_match(path: Path, hosts: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (FileNotFoundError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    have |= set(san.get_values_for_type(x509.DNSName))
    expires = cert.not_valid_after_utc
    return set(hosts) <= have and expires > dt.datetime.now(dt.UTC) + dt.timedelta(days=7)


def ensure_tls(data_dir: Path, hosts: list[str]) -> TlsFiles:
    """Make the CA (first start) and a server certificate covering ``hosts`` (if missing)."""
    tls_dir = data_dir / "tls"
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # private: keys, secrets, disks
    tls_dir.mkdir(exist_ok=True, mode=0o700)
    hosts = sorted(set([*hosts, "127.0.0.1", "localhost"]))
    if (tls_dir / "ca.pem").exists() and (tls_dir / "ca.key").exists():
        ca_cert, ca_key = _load_ca(tls_dir)
    else:
        ca_cert, ca_key = _make_ca(tls_dir)
    files = TlsFiles(
        ca_cert=tls_dir / "ca.pem",
        server_cert=tls_dir / "server.pem",
        server_key=tls_dir / "server.key",
        bundle=tls_dir / "bundle.pem",
    )
    if not (_server_hosts_match(files.server_cert, hosts) and files.server_key.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(_san(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(files.server_key, _key_pem(key))
        files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if not files.bundle.exists():
        try:
            import certifi

            roots = Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n"
        except ImportError:  # no requests stack installed: the bundle is our CA alone
            roots = b""
        files.bundle.write_bytes(roots + files.ca_cert.read_bytes())
    return files
