"""Vendor-metered tagging: the rules for `UsageAllocations` and their tags.

Tags (→ InvalidTag): 1–5 per allocation, no key twice in one allocation, at most 5 distinct
keys across a record's allocations, keys of 1–100 and values of 1–256 characters from the
Seller Guide's set (letters, digits, space and `+ - = . _ : / @`).

Allocations (→ InvalidUsageAllocations): 1–2500 of them, each of the same kind of quantity
as its record (integer or decimal), a different tag set each (at most one untagged), and
quantities that add up exactly to the record's quantity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marketmeter.domain.errors import InvalidTag, InvalidUsageAllocations
from marketmeter.domain.models import Allocation, Tag
from marketmeter.domain.quantities import Quantity, format_micros

MAX_ALLOCATIONS = 2500
MAX_TAGS_PER_ALLOCATION = 5
MAX_DISTINCT_KEYS = 5
MAX_KEY_LENGTH = 100
MAX_VALUE_LENGTH = 256
_TAG_CHARS = re.compile(r"[a-zA-Z0-9+ \-=._:/@]+")


def check_allocations(quantity: Quantity, allocations: tuple[Allocation, ...] | None) -> None:
    """Raise InvalidTag or InvalidUsageAllocations if the allocations break a rule."""
    if allocations is None:
        return
    check_tags(allocations)
    if not allocations:
        raise InvalidUsageAllocations("UsageAllocations must hold at least one allocation.")
    if len(allocations) > MAX_ALLOCATIONS:
        raise InvalidUsageAllocations(
            f"UsageAllocations holds {len(allocations)} allocations; at most "
            f"{MAX_ALLOCATIONS} are allowed."
        )
    for i, allocation in enumerate(allocations, 1):
        if allocation.quantity.as_decimal != quantity.as_decimal:
            want, got = _kinds(quantity.as_decimal), _kinds(allocation.quantity.as_decimal)
            raise InvalidUsageAllocations(
                f"Allocations must use the same type of quantity as the usage record: "
                f"allocation {i} uses {got} but the record uses {want}."
            )
    seen: set[frozenset[tuple[str, str]]] = set()
    for i, allocation in enumerate(allocations, 1):
        tag_set = frozenset((t.key, t.value) for t in allocation.tags)
        if tag_set in seen:
            what = "no tags" if not tag_set else "the same set of tags"
            raise InvalidUsageAllocations(
                f"Each UsageAllocation must have a unique set of tags: allocation {i} has "
                f"{what} as an earlier allocation."
            )
        seen.add(tag_set)
    total = sum(a.quantity.micros for a in allocations)
    if total != quantity.micros:
        raise InvalidUsageAllocations(
            f"Sum of allocated usage quantities is not equal to the usage quantity: "
            f"{_show(total)} allocated, {_show(quantity.micros)} metered."
        )


def check_tags(allocations: tuple[Allocation, ...]) -> None:
    keys: set[str] = set()
    for i, allocation in enumerate(allocations, 1):
        if len(allocation.tags) > MAX_TAGS_PER_ALLOCATION:
            raise InvalidTag(
                f"The tag is invalid, or the number of tags is greater than 5: allocation {i} "
                f"has {len(allocation.tags)} tags."
            )
        in_allocation: set[str] = set()
        for tag in allocation.tags:
            _check_text("key", tag.key, MAX_KEY_LENGTH, i)
            _check_text("value", tag.value, MAX_VALUE_LENGTH, i)
            if tag.key in in_allocation:
                raise InvalidTag(f"Tag key '{tag.key}' appears more than once in allocation {i}.")
            in_allocation.add(tag.key)
        keys |= in_allocation
    if len(keys) > MAX_DISTINCT_KEYS:
        raise InvalidTag(
            f"The tag is invalid, or the number of tags is greater than 5: the allocations use "
            f"{len(keys)} distinct tag keys ({', '.join(sorted(keys))}); at most 5 are allowed."
        )


def _check_text(what: str, text: str, max_length: int, index: int) -> None:
    if not text:
        raise InvalidTag(f"A tag {what} in allocation {index} is empty.")
    if len(text) > max_length:
        raise InvalidTag(
            f"Tag {what} '{text[:40]}…' in allocation {index} is longer than "
            f"{max_length} characters."
        )
    if not _TAG_CHARS.fullmatch(text):
        raise InvalidTag(
            f"Tag {what} '{text}' in allocation {index} has a character outside "
            "a-z A-Z 0-9, space and + - = . _ : / @."
        )


def _kinds(as_decimal: bool) -> str:
    return "decimal quantities" if as_decimal else "integer quantities"


def _show(micros: int) -> str:
    return format_micros(micros)


def allocation_as_sent(allocation: Allocation) -> dict[str, Any]:
    """The allocation in its API form, as the seller sent it (kept and exported so)."""
    q = allocation.quantity
    sent: dict[str, Any] = (
        {"AllocatedUsageQuantityAsDecimal": q.text}
        if q.as_decimal
        else {"AllocatedUsageQuantity": q.whole}
    )
    if allocation.tags:
        sent["Tags"] = [{"Key": t.key, "Value": t.value} for t in allocation.tags]
    return sent


def allocation_from_sent(sent: Mapping[str, Any]) -> Allocation:
    if "AllocatedUsageQuantityAsDecimal" in sent:
        quantity = Quantity.from_decimal_string(sent["AllocatedUsageQuantityAsDecimal"])
    else:
        quantity = Quantity.from_integer(sent["AllocatedUsageQuantity"])
    return Allocation(quantity, tuple(Tag(t["Key"], t["Value"]) for t in sent.get("Tags", ())))
