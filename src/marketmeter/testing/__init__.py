"""The testing kit: AWS Marketplace in your test suite.

- `mock_marketplace` — in-process, as moto's `mock_aws` is used; boto3 needs no
  `endpoint_url`.
- The pytest plugin (installed with the package): the fixtures `marketplace` (the mock,
  fresh per test) and `marketmeter_server` (a real server for code that goes over HTTP).
- `MarketplaceHandle` — what a test does to the marketplace: subscribe, entitlements, the
  clock, faults, records, usage, `assert_metered`.
"""

from marketmeter.testing.handle import MarketplaceHandle, NotActive
from marketmeter.testing.mock import MockHandle, MockMarketplace, mock_marketplace

__all__ = ["MarketplaceHandle", "MockHandle", "MockMarketplace", "NotActive", "mock_marketplace"]
