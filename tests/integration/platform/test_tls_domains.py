"""HTTPS with a given certificate and key, and custom domains with base path mappings."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.platform_process import PlatformProcess, write_app

APP = (
    "def where(event, context):\n    return {'stage': event['requestContext']['stage'], "
    "'path': event['rawPath']}\n"
)
MANIFEST = (
    "service: web\nfunctions:\n  where:\n    handler: app.where\n    events:\n"
    "      - http: GET /where\n"
)


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_and_custom_domains_route_to_their_stages(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    app = write_app(tmp_path / "app", MANIFEST, {"app.py": APP})
    node = PlatformProcess(
        tmp_path / "data",
        app_dir=app,
        extra_args=(
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--tls-port",
            "0",
            "--domains",
            "api.example.test=prod,api.example.test/v2=beta,other.test/x=dev",
        ),
    )
    node.start()
    try:
        for stage in ("prod", "beta"):
            node.cli("deploy", str(app), "--stage", stage, check=True)
        https_url = next(line.split()[2] for line in node.output if line.startswith("unkai https "))
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=https_url, verify=trust) as https:
            plain = https.get("/where")
            prod = https.get("/where", headers={"host": "api.example.test"})
            beta = https.get("/v2/where", headers={"host": "api.example.test:443"})
            unmapped = https.get("/where", headers={"host": "other.test"})
        assert plain.json() == {"stage": "dev", "path": "/where"}
        assert prod.json() == {"stage": "prod", "path": "/where"}
        assert beta.json() == {"stage": "beta", "path": "/v2/where"}
        assert unmapped.status_code == 404
        # Plain HTTP is still served, and a client that does not trust the certificate fails
        with node.client() as http:
            assert http.get("/where").json()["stage"] == "dev"
        try:
            httpx.get(https_url + "/where", timeout=10)
            raise AssertionError("an untrusted certificate was accepted")
        except httpx.ConnectError:
            pass
    finally:
        node.stop()


def test_bad_tls_and_domain_settings_are_named(tmp_path: Path) -> None:
    cases = [
        (("--tls-cert", str(tmp_path / "missing.pem")), "--tls-cert and --tls-key go together"),
        (
            ("--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")),
            "no such file",
        ),
        (("--domains", "nohost"), "'nohost' is not 'host[/base]=stage'"),
    ]
    for args, message in cases:
        node = PlatformProcess(tmp_path / "data", extra_args=args)
        try:
            node.start()
            raise AssertionError(f"started with {args}")
        except RuntimeError as exc:
            assert message in str(exc), (args, str(exc))
        finally:
            node.stop()
