"""The local cluster's CA, the API server's serving certificate, and service-account tokens (JWT, signed
with the cluster's key, checked by the API server for the API audience); `serving_pair` also makes the local
PostgreSQL's CA and certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class ServingPair:
    """A CA and a serving certificate it signed, with the certificate's key (PEM). The CA's key is gone: nothing
    else can ever be signed by it."""

    ca_cert: bytes
    cert: bytes
    key: bytes


def _ca(common: str, start: dt.datetime, end: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return ca, key


def serving_pair(ca_name: str, server_name: str, ips: list[str], names: list[str], days: int = 30) -> ServingPair:
    """A fresh CA and a serving certificate for these IPs and DNS names (valid from 5 minutes ago)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    end = start + dt.timedelta(days=days)
    ca, ca_key = _ca(ca_name, start, end)
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(server_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ServingPair(ca.public_bytes(pem), cert.public_bytes(pem), _pem_key(key))


@dataclass
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def signing_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def admin_token(self) -> Path:
        return self.dir / "admin.token"

    def create(self, ips: list[str], names: list[str]) -> None:
        """A fresh CA, a serving certificate for these IPs and DNS names, a token key and an admin token."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        pair = serving_pair("eksflow-local-ca", "kube-apiserver", ips, names)
        self.ca_cert.write_bytes(pair.ca_cert)
        self.server_cert.write_bytes(pair.cert)
        self.server_key.write_bytes(pair.key)
        self.server_key.chmod(0o600)
        self.signing_key.write_text(secrets.token_urlsafe(48))
        self.signing_key.chmod(0o600)
        self.admin_token.write_text(secrets.token_urlsafe(32))
        self.admin_token.chmod(0o600)


class Tokens:
    """Issues and checks service-account tokens (what TokenRequest returns and projected volumes hold)."""

    def __init__(self, pki: Pki):
        self._key = pki.signing_key.read_text().strip()
        self.admin = pki.admin_token.read_text().strip()

    def issue(
        self,
        namespace: str,
        account: str,
        account_uid: str,
        audiences: list[str],
        seconds: int,
        pod: tuple[str, str] | None = None,
    ) -> tuple[str, int]:
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": f"system:serviceaccount:{namespace}:{account}",
            "aud": audiences or [API_AUDIENCE],
            "iat": issued,
            "nbf": issued,
            "exp": issued + seconds,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": account, "uid": account_uid}},
        }
        if pod:
            claims["kubernetes.io"]["pod"] = {"name": pod[0], "uid": pod[1]}
        return jwt.encode(claims, self._key, algorithm="HS256"), issued + seconds

    def user_of(self, token: str) -> tuple[str, list[str], dict] | None:
        """(user, groups, claims) for a valid token of the API audience, else None."""
        if secrets.compare_digest(token, self.admin):
            return "kubernetes-admin", ["system:masters", "system:authenticated"], {}
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=API_AUDIENCE, issuer=ISSUER)
        except jwt.PyJWTError:
            return None
        namespace = claims["kubernetes.io"]["namespace"]
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
        return claims["sub"], groups, claims
