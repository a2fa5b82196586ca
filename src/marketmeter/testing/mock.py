"""`mock_marketplace`: AWS Marketplace Metering and the Entitlement Service, in-process,
for as long as a test runs — as a decorator or a context manager, the way moto's
`mock_aws` is used.

    @mock_marketplace(catalog="tests/catalog.yaml")
    def test_fulfillment(marketplace):          # the handle: optional
        token = marketplace.subscribe("prod-1", customer_account="444455556666")
        ...

While active, boto3 and botocore clients of both services that go to AWS's endpoints are
answered by a fresh marketplace (`inprocess`, through `hook`); other services — and
clients given another `endpoint_url` — are untouched.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from marketmeter.catalog_source import CatalogSource
from marketmeter.testing import hook
from marketmeter.testing.handle import MarketplaceHandle

if TYPE_CHECKING:
    from marketmeter.testing.inprocess import InProcessMarketplace

Credentials = Literal["any", "catalog"]
F = TypeVar("F", bound=Callable[..., Any])
HANDLE_ARGUMENT = "marketplace"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAMARKETMETERMOCK1",
    "AWS_SECRET_ACCESS_KEY": "marketmeter-mock-secret-not-checked-000",
}
"""Set while a mock taking any credentials is active, when the environment names none."""


class MockHandle(MarketplaceHandle):
    """The handle of an in-process marketplace: the common handle, and who unknown
    credentials act as."""

    def __init__(self, mock: MockMarketplace) -> None:
        self._mock = mock
        inprocess = mock.inprocess
        assert inprocess is not None
        super().__init__(
            inprocess.service,
            obey=lambda _: inprocess.follow_controls(),
            check_active=lambda: mock.active,
        )

    @property
    def account(self) -> str:
        """The AWS account that credentials the catalog does not know act as."""
        return self._inprocess().account

    @account.setter
    def account(self, account_id: str) -> None:
        self._inprocess().account = account_id

    @contextmanager
    def acting_as(self, account_id: str) -> Iterator[None]:
        """Within the block, unknown credentials act as this account — a buyer's, for the
        MeterUsage or RegisterUsage of an AMI or container product."""
        before = self.account
        self.account = account_id
        try:
            yield
        finally:
            self.account = before

    def _inprocess(self) -> InProcessMarketplace:
        self.service  # noqa: B018 - raises NotActive when it is not
        assert self._mock.inprocess is not None
        return self._mock.inprocess


class MockMarketplace:
    def __init__(
        self,
        catalog: CatalogSource = None,
        *,
        credentials: Credentials = "any",
        account: str | None = None,
    ) -> None:
        if credentials not in ("any", "catalog"):
            raise ValueError(f"credentials is 'any' or 'catalog', not {credentials!r}")
        self._catalog = catalog
        self._any = credentials == "any"
        self._account = account
        self.inprocess: InProcessMarketplace | None = None
        self.active = False
        self._handle: MockHandle | None = None
        self._set_environment: list[str] = []

    @property
    def handle(self) -> MockHandle:
        if self._handle is None:
            from marketmeter.testing.handle import NotActive

            raise NotActive("the marketplace is not started")
        return self._handle

    def start(self) -> MockHandle:
        if self.active:
            raise RuntimeError("this mock_marketplace is active already")
        from marketmeter.testing.inprocess import InProcessMarketplace

        self.inprocess = InProcessMarketplace(
            self._catalog, any_credentials=self._any, account=self._account
        )
        self.active = True
        self._handle = MockHandle(self)
        self._set_environment = []
        if self._any and not any(os.environ.get(v) for v in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")):
            for name, value in FAKE_CREDENTIALS.items():  # so that boto3 finds some
                os.environ[name] = value
                self._set_environment.append(name)
        hook.activate(self.inprocess)
        return self._handle

    def stop(self) -> None:
        if not self.active or self.inprocess is None:
            return
        hook.deactivate(self.inprocess)
        self.active = False
        for name in self._set_environment:
            if os.environ.get(name) == FAKE_CREDENTIALS[name]:
                del os.environ[name]
        self._set_environment = []
        self.inprocess.close()

    def __enter__(self) -> MockHandle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __call__(self, func: F) -> F:
        """As a decorator: a fresh marketplace for each call of `func`, passed as its
        `marketplace` argument when it has one (hidden from pytest's fixtures)."""
        signature = inspect.signature(func)
        wants_handle = HANDLE_ARGUMENT in signature.parameters
        catalog, account = self._catalog, self._account
        credentials: Credentials = "any" if self._any else "catalog"

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            mock = MockMarketplace(catalog, credentials=credentials, account=account)
            with mock as handle:
                if wants_handle:
                    kwargs[HANDLE_ARGUMENT] = handle
                return func(*args, **kwargs)

        if wants_handle:
            wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[p for p in signature.parameters.values() if p.name != HANDLE_ARGUMENT]
            )
        return cast(F, wrapper)


def mock_marketplace(
    catalog: CatalogSource = None,
    *,
    credentials: Credentials = "any",
    account: str | None = None,
) -> MockMarketplace:
    """An in-process marketplace with `catalog` (a YAML/JSON file, a mapping, or none).

    `credentials="any"` (the default): access keys of the catalog are verified as on AWS;
    any other credentials act as `account` (default: the catalog's one seller, or
    123456789012), unverified — as moto takes any credentials; when the environment names
    no credentials (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`), fake ones are set in it while the
    mock is active. `"catalog"`: only the catalog's keys, every signature verified."""
    return MockMarketplace(catalog, credentials=credentials, account=account)
