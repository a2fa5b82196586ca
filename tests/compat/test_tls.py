"""`serve --tls-cert --tls-key`: HTTPS on the same port, which boto3 trusts with `verify=`
the CA that signed the certificate; and clear errors for a wrong pair of files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.compat.conftest import Fresh, new_database, recent, start_server
from tests.compat.server import marketmeter
from tests.factories import SAAS

pytestmark = pytest.mark.compat


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (CA, certificate, key) files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("marketmeter test CA"))
        .issuer_name(_name("marketmeter test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def test_https_with_boto3_trusting_the_ca(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fresh: Fresh,
) -> None:
    directory = tmp_path_factory.mktemp(f"tls-{store_kind}")
    ca, cert, key = make_certificates(directory)
    url = new_database(request, store_kind, directory)
    server = start_server(
        url, directory, "--tls-cert", str(cert), "--tls-key", str(key), ca_file=ca
    )
    try:
        assert server.url.startswith("https://")
        account, _ = fresh.customer()
        record = {
            "Timestamp": recent(),
            "CustomerAWSAccountId": account,
            "Dimension": "users",
            "Quantity": 2,
        }
        out = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[record])
        assert out["Results"][0]["Status"] == "Success"
        with server.urlopen(server.url + "/readyz") as reply:
            assert reply.status == 200
        # Without the CA, the certificate is not trusted; plain HTTP is not answered.
        with pytest.raises(urllib.error.URLError) as untrusted:
            urllib.request.urlopen(server.url + "/healthz", timeout=5)
        assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    finally:
        server.stop()


def test_a_wrong_pair_of_files_is_a_clear_error(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    url = f"sqlite:///{tmp_path / 'tls.db'}"
    alone = marketmeter("serve", "--database", url, "--tls-cert", str(cert), check=False)
    assert alone.returncode == 2
    assert "--tls-cert and --tls-key go together" in alone.stderr
    mismatched = marketmeter(
        "serve", "--database", url, "--tls-cert", str(ca), "--tls-key", str(key), check=False
    )
    assert mismatched.returncode == 2
    assert "cannot use --tls-cert" in mismatched.stderr
    assert "Traceback" not in mismatched.stderr
