"""SNS messages as SNS signs them (spec lifecycle §2, and AWS's "Verifying the signatures
of Amazon SNS messages"): SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA, over
`key\\nvalue\\n` of the message's signed keys in byte order; the certificate that verifies
them is served at `SigningCertURL`. The key is made once and kept in the database, so
every process signs with it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from marketmeter.domain.ports import Store
from marketmeter.domain.targets import Webhook

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# cryptography loads with the first signer or key pair: a server start needs neither.

CERT_PATH = "/sns/SimpleNotificationService.pem"
SNS_PATH = "/sns/"
_NOTIFICATION_KEYS: tuple[str, ...] = (
    "Message",
    "MessageId",
    "Subject",
    "Timestamp",
    "TopicArn",
    "Type",
)
_CONFIRMATION_KEYS: tuple[str, ...] = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


class SnsSigner:
    def __init__(self, store: Store) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        kept = store.get_sns_key()
        if kept is None:
            private_pem, cert_pem = new_key_pair()
            with store.transaction() as tx:
                kept = tx.put_sns_key(private_pem, cert_pem)  # another's, if it came first
        private = serialization.load_pem_private_key(kept[0].encode(), password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        self._key: RSAPrivateKey = private
        self.cert_pem = kept[1]

    def envelope(self, body: dict[str, Any], webhook: Webhook, public_url: str) -> dict[str, Any]:
        """The message as the endpoint receives it: the URLs, the signature."""
        message = dict(body)
        base = public_url.rstrip("/")
        message["SignatureVersion"] = webhook.signature_version
        message["SigningCertURL"] = base + CERT_PATH
        if message["Type"] == "SubscriptionConfirmation":
            query = {
                "Action": "ConfirmSubscription",
                "TopicArn": webhook.topic_arn,
                "Token": webhook.token,
            }
            message["SubscribeURL"] = f"{base}{SNS_PATH}?{urlencode(query)}"
            keys = _CONFIRMATION_KEYS
        else:
            query = {"Action": "Unsubscribe", "SubscriptionArn": webhook.subscription_arn}
            message["UnsubscribeURL"] = f"{base}{SNS_PATH}?{urlencode(query)}"
            keys = _NOTIFICATION_KEYS
        message["Signature"] = self.sign(message, keys, webhook.signature_version)
        return message

    def sign(self, message: dict[str, Any], keys: tuple[str, ...], version: str) -> str:
        text = "".join(f"{k}\n{message[k]}\n" for k in keys if message.get(k) is not None)
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self._key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        return base64.b64encode(signature).decode()


def headers(message: dict[str, Any], webhook: Webhook) -> dict[str, str]:
    out = {
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-message-type": message["Type"],
        "x-amz-sns-message-id": message["MessageId"],
        "x-amz-sns-topic-arn": message["TopicArn"],
    }
    if message["Type"] == "Notification":
        out["x-amz-sns-subscription-arn"] = webhook.subscription_arn
    return out


def new_key_pair() -> tuple[str, str]:
    """An RSA key and a self-signed certificate for it, valid ten years: PEMs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return private_pem, cert.public_bytes(serialization.Encoding.PEM).decode()
