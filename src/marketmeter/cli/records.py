"""`marketmeter records export`."""

from __future__ import annotations

import csv
import sys

import click
import orjson

from marketmeter.cli.common import database_option, opened
from marketmeter.domain.export import EXPORT_FIELDS


@click.group()
def records() -> None:
    """Stored metering records."""


@records.command("export")
@database_option
@click.option("--product", "product_code", default=None, help="Only this product's records.")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
def records_export(database_url: str, product_code: str | None, fmt: str) -> None:
    """Write every stored metering record to stdout, in the order stored."""
    out = sys.stdout
    with opened(database_url) as service:
        rows = service.export_records(product_code)
        if fmt == "jsonl":
            for row in rows:
                out.write(orjson.dumps(row).decode() + "\n")
        else:
            writer = csv.DictWriter(out, fieldnames=list(EXPORT_FIELDS), lineterminator="\n")
            writer.writeheader()
            for row in rows:
                if "UsageAllocations" in row:
                    row["UsageAllocations"] = orjson.dumps(row["UsageAllocations"]).decode()
                writer.writerow(row)
