"""`marketmeter usage report` (exact totals per period and group, from the rollups) and
`usage check` (what would go wrong on AWS)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from typing import Any

import click
import orjson

from marketmeter.cli.common import database_option, opened, parse_time
from marketmeter.domain.usage import (
    DEFAULT_GROUP,
    PERIODS,
    UsageReport,
    UsageWarning,
    parse_month,
)


@click.group()
def usage() -> None:
    """What was metered: reports of exact totals."""


@usage.command("report")
@database_option
@click.option("--product", "product_code", required=True, help="The product's code.")
@click.option(
    "--by", type=click.Choice(PERIODS), default="day", show_default=True, help="The period."
)
@click.option(
    "--group",
    default=",".join(DEFAULT_GROUP),
    show_default=True,
    help="Comma-separated: customer, dimension, tag:KEY (the allocations' tags); '' for none.",
)
@click.option(
    "--from",
    "start",
    default=None,
    help="ISO 8601 time or date (inclusive); default: the start of this month (UTC).",
)
@click.option("--to", "end", default=None, help="ISO 8601 time or date (exclusive); default: now.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--warnings",
    is_flag=True,
    help="Add `usage check`'s warnings of the range (they read its records: slower).",
)
def usage_report(
    *,
    database_url: str,
    product_code: str,
    by: str,
    group: str,
    start: str | None,
    end: str | None,
    fmt: str,
    warnings: bool,
) -> None:
    """Exact totals of a product's usage per hour, day or month and per customer,
    dimension and tag value. A record counts for the hour of its timestamp; the range is
    widened to whole hours (--by hour) or whole days. With --warnings, `usage check`'s
    warnings of the range follow (JSON: a "warnings" list; CSV: on standard error)."""
    groups = [g.strip() for g in group.split(",") if g.strip()]
    with opened(database_url) as service:
        report = service.usage_report(
            product_code,
            by=by,  # type: ignore[arg-type]  # one of PERIODS, by click.Choice
            group=groups,
            start=None if start is None else parse_time(start),
            end=None if end is None else parse_time(end),
            warnings=warnings,
        )
    write_report(report, fmt)
    if report.warnings is not None and fmt != "json":
        write_warnings(report.product_code, report.warnings, to_stderr=fmt == "csv")


def write_warnings(
    product_code: str, found: Sequence[UsageWarning], *, to_stderr: bool = False
) -> None:
    if not found:
        click.echo(f"{product_code}: no warnings", err=to_stderr)
    for w in found:
        click.echo(f"{w.kind}: {w.message}", err=to_stderr)


def write_report(report: UsageReport, fmt: str) -> None:
    out = sys.stdout
    document = report.as_json()
    if fmt == "json":
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    columns = report_columns(report.group)
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_text(row[c], "") for c in columns] for row in document["rows"]])
        return
    rows = [[_text(row[c], "-") for c in columns] for row in document["rows"]]
    click.echo(
        f"{report.product_code}: usage by {report.by} from {document['from']} "
        f"to {document['to']} (exclusive)"
    )
    if not rows:
        click.echo("no usage in this range")
        return
    total = [
        "total",
        *[""] * (len(columns) - 3),
        document["total"],
        str(sum(r.records for r in report.rows)),
    ]
    click.echo(format_table(columns, [*rows, total], numeric={"quantity", "records"}))


def report_columns(group: Sequence[str]) -> list[str]:
    columns = ["period"]
    for g in group:
        columns += ["customer_identifier", "customer_aws_account_id"] if g == "customer" else [g]
    return [*columns, "quantity", "records"]


def format_table(columns: list[str], rows: list[list[str]], numeric: set[str]) -> str:
    """Columns padded to their widest cell; numbers aligned on the decimal point."""
    aligned = [list(r) for r in rows]
    for i, name in enumerate(columns):
        if name in numeric:
            cells = [r[i] for r in aligned]
            decimals = max((len(c.partition(".")[2]) for c in cells), default=0)
            for r in aligned:
                whole, dot, fraction = r[i].partition(".")
                r[i] = whole + (dot or (" " if decimals else "")) + fraction.ljust(decimals)
    widths = [max(len(c), *(len(r[i]) for r in aligned)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for r in aligned:
        cells = [
            cell.rjust(w) if name in numeric else cell.ljust(w)
            for name, cell, w in zip(columns, r, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _text(value: Any, none: str) -> str:
    """A cell: `none` for no value (an untagged group, a customer without identifier)."""
    return none if value is None else str(value)


@usage.command("check")
@database_option
@click.option("--product", "product_code", required=True, help="The product's code.")
@click.option("--from", "start", default=None, help="ISO 8601 (default: this month's start).")
@click.option("--to", "end", default=None, help="ISO 8601, exclusive (default: now).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--strict", is_flag=True, help="Exit with status 1 when there is a warning.")
def usage_check(
    *,
    database_url: str,
    product_code: str,
    start: str | None,
    end: str | None,
    fmt: str,
    strict: bool,
) -> None:
    """Warnings a seller needs: a customer, dimension and hour metered both by customer and
    by LicenseArn (AWS bills both); closed hours in which a subscribed customer sent no
    record (a missed hourly report); records accepted under clock travel that AWS, on the
    real clock, would have refused (sent after their window closed)."""
    with opened(database_url) as service:
        found = service.usage_warnings(
            product_code,
            start=None if start is None else parse_time(start),
            end=None if end is None else parse_time(end),
        )
    if fmt == "json":
        click.echo(orjson.dumps([w.as_json() for w in found], option=orjson.OPT_INDENT_2))
    else:
        write_warnings(product_code, found)
    if strict and found:
        sys.exit(1)


@usage.command("invoice")
@database_option
@click.option("--product", "product_code", required=True, help="The product's code.")
@click.option("--month", required=True, help="YYYY-MM, as 2026-11.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def usage_invoice(*, database_url: str, product_code: str, month: str, fmt: str) -> None:
    """Each customer's usage of the month priced by the catalog's `prices`: a preview of
    what AWS would invoice for the metered usage (no fees, taxes or contracts)."""
    with opened(database_url) as service:
        preview = service.invoice_preview(product_code, parse_month(month))
    if fmt == "json":
        click.echo(orjson.dumps(preview.as_json(), option=orjson.OPT_INDENT_2))
        return
    click.echo(f"{product_code}: invoice preview for {preview.month:%Y-%m}")
    if not preview.customers:
        click.echo("no usage in this month")
        return
    columns = ["customer", "dimension", "quantity", "price_per_unit", "amount", "currency"]
    rows = []
    for c in preview.customers:
        who = c.customer_identifier or c.customer_aws_account_id
        for line in c.lines:
            rows.append(
                [
                    who,
                    line.dimension,
                    str(line.quantity),
                    "-" if line.price_per_unit is None else str(line.price_per_unit),
                    "-" if line.amount is None else str(line.amount),
                    line.currency or "-",
                ]
            )
        for currency, total in c.totals.items():
            rows.append([who, "total", "", "", str(total), currency])
    for currency, total in preview.totals.items():
        rows.append(["all customers", "total", "", "", str(total), currency])
    click.echo(format_table(columns, rows, numeric={"quantity", "price_per_unit", "amount"}))
