"""The metering records and ClientTokens: claimed by unique keys (each stored record logged
for the usage rollups by the same transaction), read back, exported."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from marketmeter.domain.models import ClientTokenEntry, MeteringRecord, SlotKey
from marketmeter.domain.ports import FirstClaim, RecordFilter, StoredRecordRow
from marketmeter.domain.quantities import Quantity
from marketmeter.domain.timewindow import floor_to_hour
from marketmeter.instants import from_ms, to_ms
from marketmeter.store.codec import allocations_from_json, allocations_to_json
from marketmeter.store.sql.runner import Dialect, Runner, array_columns, array_placeholders

RECORD_COLUMNS = (
    "record_id, product_code, customer_aws_account_id, resource, license_key, dimension, "
    "hour, operation, timestamp, quantity_micros, quantity_text, quantity_as_decimal, "
    "allocations, customer_identifier, license_arn, received_at, accepted_late"
)
_SLOT_COLUMNS = "product_code, hour, customer_aws_account_id, resource, license_key, dimension"


@lru_cache(maxsize=64)
def _insert_records_sql(n: int) -> str:
    row = "(" + ", ".join("?" * 17) + ")"
    return (
        f"INSERT INTO metering_records ({RECORD_COLUMNS}) VALUES {', '.join([row] * n)} "
        f"ON CONFLICT ({_SLOT_COLUMNS}) DO NOTHING RETURNING record_id"
    )


_RECORD_TYPES = ("text",) * 6 + (
    "bigint",
    "text",
    "bigint",
    "bigint",
    "text",
    "smallint",
    "text",
    "text",
    "text",
    "bigint",
    "boolean",
)
_INSERT_RECORDS_PG = (
    f"INSERT INTO metering_records ({RECORD_COLUMNS}) "
    f"SELECT * FROM unnest({array_placeholders(_RECORD_TYPES)}) "
    f"ON CONFLICT ({_SLOT_COLUMNS}) DO NOTHING RETURNING record_id"
)
"""PostgreSQL's insert of many records: one array a column, whatever their number — one
short statement text, which psycopg parses once (a long one it parses again every time).
(One record goes as a row of values: 17 arrays of one cost twice the client's time.)"""


_TOKEN_COLUMNS = "account_id, client_token, fingerprint, record_id, created_at"
_TOKEN_TYPES = ("text", "text", "text", "text", "bigint")
_INSERT_TOKEN = (
    f"INSERT INTO client_tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (account_id, client_token) DO NOTHING"
)
_INSERT_RECORD_AND_TOKEN_PG = (
    f"WITH stored AS ({_insert_records_sql(1)}), "
    f"token AS (INSERT INTO client_tokens ({_TOKEN_COLUMNS}) "
    "SELECT ?, ?, ?, record_id, ? FROM stored "
    "ON CONFLICT (account_id, client_token) DO NOTHING RETURNING record_id) "
    "SELECT (SELECT record_id FROM stored), (SELECT record_id FROM token)"
)
"""A record and its ClientToken in one statement; the token only if the record was
stored (its id comes from the record's row)."""


def _token_params(entry: ClientTokenEntry) -> tuple[str, str, str, str, int]:
    return (
        entry.account_id,
        entry.client_token,
        entry.request_fingerprint,
        entry.record_id,
        to_ms(entry.created_at),
    )


def insert_records_statement(
    dialect: Dialect, records: list[MeteringRecord]
) -> tuple[str, list[Any]]:
    """The statement that stores the records whose slots are free and returns their ids,
    and its parameters."""
    params = _records_params(records)
    if dialect == "postgresql" and len(records) > 1:
        width = len(_RECORD_TYPES)
        return _INSERT_RECORDS_PG, array_columns(
            _RECORD_TYPES, [params[i::width] for i in range(width)]
        )
    return _insert_records_sql(len(records)), params


def _record_and_token_statement(
    record: MeteringRecord, entry: ClientTokenEntry
) -> tuple[str, list[Any]]:
    account, token, fingerprint, _, created = _token_params(entry)
    return _INSERT_RECORD_AND_TOKEN_PG, [
        *_records_params([record]),
        account,
        token,
        fingerprint,
        created,
    ]


_RECORD_NAMES = RECORD_COLUMNS.replace(" ", "")
_CLAIMS_PG = (
    f"WITH stored AS (INSERT INTO metering_records ({RECORD_COLUMNS}) "
    f"SELECT {RECORD_COLUMNS} FROM unnest({array_placeholders(_RECORD_TYPES)}) "
    f"WITH ORDINALITY AS i({_RECORD_NAMES}, n) ORDER BY n "
    f"ON CONFLICT ({_SLOT_COLUMNS}) DO NOTHING RETURNING record_id), "
    f"token AS (INSERT INTO client_tokens ({_TOKEN_COLUMNS}) "
    "SELECT t.account_id, t.client_token, t.fingerprint, stored.record_id, t.created_at "
    f"FROM unnest({array_placeholders(_TOKEN_TYPES)}) "
    "WITH ORDINALITY AS t(account_id, client_token, fingerprint, record_id, created_at, n) "
    "JOIN stored ON stored.record_id = t.record_id ORDER BY t.n "
    "ON CONFLICT (account_id, client_token) DO NOTHING RETURNING record_id) "
    "SELECT record_id, false FROM stored UNION ALL SELECT record_id, true FROM token"
)
"""PostgreSQL: the first claims of a group's units in one statement — every unit's
records in the units' order (of two records for one slot, the first wins, as when each
unit's statement runs in turn), then the ClientTokens of the records stored (of two for
one token, the first wins). Its rows: the ids of the records stored (false) and of those
whose token was stored (true)."""


def first_claims_statement(
    claims: list[FirstClaim],
) -> tuple[str, list[Any], Callable[[list[Any]], list[list[Any]]]]:
    """PostgreSQL's statement of several units' first claims (`Claiming`), its parameters,
    and what turns its rows into each claim's own: the rows its unit's statement would
    have returned (`MeteringWrites.claimed_ahead`: `claim_slots`' ids of the records
    stored; `claim_slot_and_token`'s one row, the record's id if stored and again if its
    token was)."""
    records = [r for claim in claims for r in claim.records]
    params = _records_params(records)
    width = len(_RECORD_TYPES)
    tokens = []  # each joined to its record by the record's id
    for claim in claims:
        if claim.token is not None:
            account, token, fingerprint, _, created = _token_params(claim.token)
            tokens.append((account, token, fingerprint, claim.records[0].record_id, created))
    columns = array_columns(_RECORD_TYPES, [params[i::width] for i in range(width)])
    columns += array_columns(_TOKEN_TYPES, [[t[i] for t in tokens] for i in range(5)])

    def answers(rows: list[Any]) -> list[list[Any]]:
        stored = {row[0] for row in rows if not row[1]}
        tokened = {row[0] for row in rows if row[1]}
        answered: list[list[Any]] = []
        for claim in claims:
            if claim.token is None:
                answered.append([(r.record_id,) for r in claim.records if r.record_id in stored])
                continue
            rid = claim.records[0].record_id
            answered.append([(rid if rid in stored else None, rid if rid in tokened else None)])
        return answered

    return _CLAIMS_PG, columns, answers


def _insert_records(run: Runner, records: list[MeteringRecord]) -> set[str]:
    """Store the records whose slots are free; the ids of those stored."""
    return {row[0] for row in run.fetchall(*insert_records_statement(run.dialect, records))}


@lru_cache(maxsize=64)
def _occupants_sql(n: int) -> str:
    # A join on the slot's columns, which both databases answer from the slot's unique
    # index (SQLite scans the whole table for a row value `IN (VALUES …)`).
    keys = ", ".join(["(?, ?, ?, ?, ?, ?)"] * n)
    matched = " AND ".join(
        f"m.{column.strip()} = k.column{i + 1}" for i, column in enumerate(_SLOT_COLUMNS.split(","))
    )
    columns = ", ".join(f"m.{column.strip()}" for column in RECORD_COLUMNS.split(","))
    return f"SELECT {columns} FROM (VALUES {keys}) AS k JOIN metering_records AS m ON {matched}"


def _occupants(run: Runner, taken: list[MeteringRecord]) -> dict[tuple[Any, ...], MeteringRecord]:
    """The records stored in the slots of `taken`, by their slots' parameters."""
    keys: list[Any] = []
    for record in taken:
        keys.extend(_slot_params(record.slot))
    return {
        _slot_params(found.slot): found
        for found in map(record_from_row, run.fetchall(_occupants_sql(len(taken)), keys))
    }


def _slot_params(slot: SlotKey) -> tuple[str, int, str, str, str, str]:
    return (
        slot.product_code,
        to_ms(slot.hour),
        slot.customer_aws_account_id,
        slot.resource,
        slot.license_key,
        slot.dimension,
    )


def _records_params(records: list[MeteringRecord]) -> list[Any]:
    """The insert's parameters, every record's 17 in a row. (This runs for every record of
    every batch: a batch shares a few distinct instants, converted once each.)"""
    instants = {i for r in records for i in (r.slot.hour, r.timestamp, r.received_at)}
    millis = {instant: to_ms(instant) for instant in instants}
    params: list[Any] = []
    extend = params.extend
    for r in records:
        s = r.slot
        q = r.quantity
        allocations = r.allocations
        extend(
            (
                r.record_id,
                s.product_code,
                s.customer_aws_account_id,
                s.resource,
                s.license_key,
                s.dimension,
                millis[s.hour],
                r.operation,
                millis[r.timestamp],
                q.micros,
                q.text,
                int(q.as_decimal),
                None if allocations is None else allocations_to_json(allocations),
                r.customer_identifier,
                r.license_arn,
                millis[r.received_at],
                r.accepted_late,
            )
        )
    return params


class MeteringReads:
    """Reads of records and tokens, run by `self._runner()`."""

    def _runner(self) -> Runner:
        raise NotImplementedError

    def count_records(self, product_code: str | None = None) -> int:
        sql, params = count_query(product_code)
        return int(self._runner().fetchone(sql, params)[0])

    def get_record(self, record_id: str) -> MeteringRecord | None:
        row = self._runner().fetchone(
            f"SELECT {RECORD_COLUMNS} FROM metering_records WHERE record_id = ?", (record_id,)
        )
        return None if row is None else record_from_row(row)

    def page_records(
        self, where: RecordFilter, *, after: int = 0, limit: int = 100
    ) -> list[StoredRecordRow]:
        return record_page(self._runner(), where, after, limit)

    def received_per_minute(
        self, start: datetime, end: datetime, newest: int
    ) -> tuple[dict[datetime, int], bool]:
        # The newest records by `seq` (the primary key, read backwards), not an index on
        # received_at that every insert would pay for.
        run = self._runner()
        rows = run.fetchall(
            "SELECT received_at / 60000, count(*) FROM (SELECT received_at FROM "
            "metering_records ORDER BY seq DESC LIMIT ?) AS newest "
            "WHERE received_at >= ? AND received_at < ? GROUP BY received_at / 60000",
            (newest, to_ms(start), to_ms(end)),
        )
        counts = {from_ms(int(minute) * 60000): int(n) for minute, n in rows}
        # Complete unless the first record not read (the next older) is of the range too.
        unread = run.fetchone(
            "SELECT received_at FROM metering_records ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (newest,),
        )
        complete = unread is None or int(unread[0]) < to_ms(start)
        return counts, complete

    def find_client_token(self, account_id: str, client_token: str) -> ClientTokenEntry | None:
        row = self._runner().fetchone(
            "SELECT account_id, client_token, fingerprint, record_id, created_at "
            "FROM client_tokens WHERE account_id = ? AND client_token = ?",
            (account_id, client_token),
        )
        if row is None:
            return None
        return ClientTokenEntry(row[0], row[1], row[2], row[3], from_ms(row[4]))


class MeteringWrites(MeteringReads):
    """The claims, inside a transaction. The records a transaction stored are kept in
    `stored`, and logged for the usage rollups just before it commits
    (`store.sql.usage.add_usage`; most are logged by the database itself, as stored)."""

    stored: list[MeteringRecord]
    claimed_ahead: tuple[FirstClaim, list[Any]] | None = None
    """A unit's first claim that the store sent ahead (`Claiming`), and the rows its
    statement returned: the answer of that claim when the unit makes it, once."""

    def _answered_ahead(
        self, records: list[MeteringRecord], token: ClientTokenEntry | None
    ) -> list[Any] | None:
        ahead = self.claimed_ahead
        if ahead is None:
            return None
        claim, rows = ahead
        if claim.token is not token or len(claim.records) != len(records):
            return None
        if any(a is not b for a, b in zip(claim.records, records, strict=True)):
            return None
        self.claimed_ahead = None
        return rows

    def claim_slot(self, record: MeteringRecord) -> MeteringRecord:
        return self.claim_slots([record])[0]

    def claim_slots(self, records: list[MeteringRecord]) -> list[MeteringRecord]:
        """One statement stores every record whose slot is free (in list order, so of two
        records for one slot the first wins); one more reads the occupants of the rest."""
        if not records:
            return []
        run = self._runner()
        ahead = self._answered_ahead(records, None)
        inserted = _insert_records(run, records) if ahead is None else {r[0] for r in ahead}
        if len(inserted) == len(records):
            self.stored.extend(records)
            return list(records)
        self.stored.extend(r for r in records if r.record_id in inserted)
        occupants = _occupants(run, [r for r in records if r.record_id not in inserted])
        return [r if r.record_id in inserted else occupants[_slot_params(r.slot)] for r in records]

    def claim_slot_and_token(
        self, record: MeteringRecord, entry: ClientTokenEntry
    ) -> tuple[MeteringRecord, bool]:
        run = self._runner()
        if run.dialect != "postgresql":  # two local calls cost no more than one
            occupant = self.claim_slot(record)
            if occupant.record_id != record.record_id:
                return occupant, False
            return record, run.execute(_INSERT_TOKEN, _token_params(entry)) == 1
        ahead = self._answered_ahead([record], entry)
        stored, claimed = (
            run.fetchone(*_record_and_token_statement(record, entry)) if ahead is None else ahead[0]
        )
        if stored is None:  # the slot is taken
            return _occupants(run, [record])[_slot_params(record.slot)], False
        self.stored.append(record)
        return record, claimed is not None

    def claim_client_token(self, entry: ClientTokenEntry) -> ClientTokenEntry:
        changed = self._runner().execute(_INSERT_TOKEN, _token_params(entry))
        if changed == 1:
            return entry
        found = self.find_client_token(entry.account_id, entry.client_token)
        assert found is not None
        return found


def record_from_row(row: Any) -> MeteringRecord:
    quantity = (
        Quantity.from_decimal_string(row[10]) if row[11] else Quantity.from_integer(int(row[10]))
    )
    return MeteringRecord(
        record_id=row[0],
        operation=row[7],
        slot=SlotKey(row[1], row[2], row[3], row[4], row[5], from_ms(row[6])),
        timestamp=from_ms(row[8]),
        quantity=quantity,
        allocations=allocations_from_json(row[12]),
        customer_identifier=row[13],
        license_arn=row[14],
        received_at=from_ms(row[15]),
        accepted_late=bool(row[16]),
    )


def records_query(product_code: str | None) -> tuple[str, tuple[Any, ...]]:
    """Every stored record (of one product), in the order stored."""
    if product_code is None:
        return f"SELECT {RECORD_COLUMNS} FROM metering_records ORDER BY seq", ()
    return (
        f"SELECT {RECORD_COLUMNS} FROM metering_records WHERE product_code = ? ORDER BY seq",
        (product_code,),
    )


def count_query(product_code: str | None) -> tuple[str, tuple[Any, ...]]:
    if product_code is None:
        return "SELECT COUNT(*) FROM metering_records", ()
    return "SELECT COUNT(*) FROM metering_records WHERE product_code = ?", (product_code,)


def record_page(
    run: Runner, where: RecordFilter, after: int, limit: int, *, allocated: bool = False
) -> list[StoredRecordRow]:
    """Up to `limit` records the filter admits (and, when `allocated`, sent with
    allocations), stored after `after`, in the order stored."""
    clauses, params = _filter_clauses(where)
    if allocated:
        clauses.append("allocations IS NOT NULL")
    rows = run.fetchall(
        f"SELECT seq, {RECORD_COLUMNS} FROM metering_records "
        f"WHERE seq > ?{''.join(' AND ' + c for c in clauses)} ORDER BY seq LIMIT ?",
        [after, *params, limit],
    )
    return [StoredRecordRow(int(row[0]), record_from_row(row[1:])) for row in rows]


def _filter_clauses(where: RecordFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("product_code", where.product_code),
        ("license_arn", where.license_arn),
        ("dimension", where.dimension),
        ("operation", where.operation),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.customer is not None:
        clauses.append("(customer_aws_account_id = ? OR customer_identifier = ?)")
        params += [where.customer, where.customer]
    # The hour bounds add nothing to the timestamp's, but find the records by the slot's
    # index (product, hour, …) when the product is given.
    if where.start is not None:
        clauses += ["hour >= ?", "timestamp >= ?"]
        params += [to_ms(floor_to_hour(where.start)), to_ms(where.start)]
    if where.end is not None:
        clauses += ["hour < ?", "timestamp < ?"]
        params += [to_ms(where.end), to_ms(where.end)]
    if where.received_from is not None:
        clauses.append("received_at >= ?")
        params.append(to_ms(where.received_from))
    if where.received_until is not None:
        clauses.append("received_at < ?")
        params.append(to_ms(where.received_until))
    return clauses, params
