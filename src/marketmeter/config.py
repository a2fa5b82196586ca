"""Settings: one frozen object, built at the edge (flag, then environment, then default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from marketmeter.domain.service import ServiceSettings
from marketmeter.store.factory import DEFAULT_DATABASE_URL

ENV_PREFIX = "MARKETMETER_"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 8
    regions: str = ""
    """Comma-separated Regions where the API is enabled; empty enables every Region."""
    throttling: bool = False
    log_level: str = "info"
    log_format: str = "text"
    """`text` or `json` (one object a line)."""
    test_controls: bool = False
    """Obey the test controls (`marketmeter clock`, `marketmeter faults`)."""
    public_url: str = ""
    """The server's address as receivers of its messages reach it; empty: host and port."""
    deliveries: bool = True
    """Deliver the outbox from this process."""
    admin_token: str = ""
    """The admin API's bearer token; empty: the one generated on the first start (kept
    hashed in the database)."""
    metrics_token: str = ""
    """`GET /metrics` only for this bearer token; empty: open."""
    request_timeout: float = 10.0
    """Seconds a client has to send a request's headers, and again its body."""
    max_connections: int = 10_000
    """Connections (and requests in progress) a process serves at once; past it, 503."""
    tls_cert: str = ""
    """A PEM certificate (chain) file: serve HTTPS with it and `tls_key`; empty: HTTP."""
    tls_key: str = ""

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def address(self) -> str:
        """Where this server listens, as a URL."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def public_address(self) -> str:
        return self.public_url or self.address()

    def service_settings(self) -> ServiceSettings:
        regions = frozenset(r.strip() for r in self.regions.split(",") if r.strip())
        return ServiceSettings(
            enabled_regions=regions or None,
            throttling=self.throttling,
        )

    def to_environment(self) -> dict[str, str]:
        """The settings as environment variables: how server worker processes get them."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[ENV_PREFIX + f.name.upper()] = (
                ("1" if value else "0") if isinstance(value, bool) else str(value)
            )
        return out

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]
