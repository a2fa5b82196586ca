"""The testing kit's tests start the plugin's fixtures from their own catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

CATALOG = Path(__file__).with_name("catalog.yaml")


@pytest.fixture(scope="session")
def marketmeter_catalog() -> Path:
    return CATALOG
