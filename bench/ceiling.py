"""The ceiling of the Python HTTP stack: a bare ASGI app served exactly like marketmeter
(uvicorn, httptools, uvloop) that only reads the body, parses the JSON and answers with a
response of the right shape, with one constant record id (making ids is marketmeter's work,
not the HTTP stack's: DESIGN.md §6). marketmeter can at best reach its speed."""

from __future__ import annotations

from typing import Any

import orjson

_HEADERS = [(b"content-type", b"application/x-amz-json-1.1")]
_ID = "0f3c6a52-7b1e-4c3d-9a57-1d2e3f405162"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    payload = orjson.loads(b"".join(chunks) or b"{}")
    if "UsageRecords" in payload:
        answer: dict[str, Any] = {
            "Results": [
                {"UsageRecord": r, "MeteringRecordId": _ID, "Status": "Success"}
                for r in payload["UsageRecords"]
            ],
            "UnprocessedRecords": [],
        }
    else:
        answer = {"MeteringRecordId": _ID}
    body = orjson.dumps(answer)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
