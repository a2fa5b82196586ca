"""Sending the outbox: SNS-signed HTTP (`sns`), EventBridge-shaped HTTP (`send`), the
worker that delivers what is due in every server process (`worker`), and the SNS side of
the conversation that marketmeter serves itself — the signing certificate, subscription
confirmation and unsubscribe (`endpoint`). Reads and writes the store only through the
domain's ports."""
