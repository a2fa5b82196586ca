"""The seller's metering agent: `UsageMeter` records usage as it happens and gets it to AWS
Marketplace right — summed per hour of use, kept durably, sent in batches of 25 once each
hour has closed, retried while AWS accepts it, every record's status checked. Works against
AWS or marketmeter alike (it shares nothing with the server but the public API)."""

from marketmeter.agent.meter import UsageMeter
from marketmeter.agent.outbox import OutboxError
from marketmeter.agent.sender import Outcome

__all__ = ["OutboxError", "Outcome", "UsageMeter"]
