"""The SNS side that marketmeter serves itself, under `/sns/` on the server's port: the
certificate that verifies its signatures (`SigningCertURL`), subscription confirmation
(`SubscribeURL`: `?Action=ConfirmSubscription&TopicArn=…&Token=…`) and `?Action=
Unsubscribe&SubscriptionArn=…` (`UnsubscribeURL`) — answered in SNS's XML."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from marketmeter.asgi import Receive, Scope, Send, reply
from marketmeter.delivery.sns import CERT_PATH, SNS_PATH, SnsSigner
from marketmeter.domain.marketplace import Marketplace
from marketmeter.domain.ports import Store

_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


class SnsEndpoint:
    def __init__(self, store: Store, marketplace: Marketplace) -> None:
        self._store = store
        self._marketplace = marketplace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, _error("Sender", "InvalidAction", "Use GET."))
        elif path == CERT_PATH:
            cert = await asyncio.to_thread(lambda: SnsSigner(self._store).cert_pem)
            await _answer(send, 200, cert.encode(), b"application/x-pem-file")
        elif path == SNS_PATH:
            query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
            status, body = await asyncio.to_thread(self._action, query)
            await _answer(send, status, body)
        else:
            await _answer(send, 404, _error("Sender", "NotFound", "No such resource."))

    def _action(self, query: dict[str, str]) -> tuple[int, bytes]:
        action = query.get("Action")
        if action == "ConfirmSubscription":
            webhook = self._marketplace.confirm_webhook(query.get("Token", ""))
            if webhook is None or webhook.topic_arn != query.get("TopicArn", webhook.topic_arn):
                return 404, _error("Sender", "NotFound", "The token is not valid.")
            return 200, _result("ConfirmSubscription", webhook.subscription_arn)
        if action == "Unsubscribe":
            arn = query.get("SubscriptionArn", "")
            webhook_id = arn.rsplit(":", 1)[-1]
            webhook = self._store.get_webhook(webhook_id)
            if webhook is None or webhook.subscription_arn != arn:
                return 404, _error("Sender", "NotFound", "No such subscription.")
            self._marketplace.remove_webhook(webhook_id)
            return 200, _result("Unsubscribe", None)
        return 400, _error("Sender", "InvalidAction", f"Unknown action {action!r}.")


def _result(action: str, subscription_arn: str | None) -> bytes:
    inner = (
        f"<{action}Result><SubscriptionArn>{escape(subscription_arn)}</SubscriptionArn>"
        f"</{action}Result>"
        if subscription_arn is not None
        else ""
    )
    return (
        f'<{action}Response xmlns="{_XMLNS}">{inner}<ResponseMetadata><RequestId>'
        f"{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()


def _error(kind: str, code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        "</ErrorResponse>"
    ).encode()


async def _answer(send: Send, status: int, body: bytes, content_type: bytes = b"text/xml") -> None:
    await reply(send, status, body, content_type)
