import pytest

from marketmeter.domain.allocations import check_allocations
from marketmeter.domain.errors import InvalidTag, InvalidUsageAllocations
from marketmeter.domain.models import Allocation, Tag
from tests.factories import alloc, qty


def test_allocations_that_sum_to_the_quantity_are_accepted() -> None:
    check_allocations(qty(10), (alloc(4, team="a"), alloc(6, team="b")))


def test_decimal_allocations_sum_exactly() -> None:
    check_allocations(qty("0.3"), (alloc("0.1", team="a"), alloc("0.2", team="b")))


def test_no_allocations_is_fine() -> None:
    check_allocations(qty(10), None)


def test_sum_below_the_quantity_is_invalid() -> None:
    with pytest.raises(InvalidUsageAllocations, match="9 allocated, 10 metered"):
        check_allocations(qty(10), (alloc(4, team="a"), alloc(5, team="b")))


def test_allocation_kind_must_match_the_record() -> None:
    with pytest.raises(InvalidUsageAllocations, match="same type of quantity"):
        check_allocations(qty("10"), (alloc(10, team="a"),))
    with pytest.raises(InvalidUsageAllocations, match="same type of quantity"):
        check_allocations(qty(10), (alloc("10", team="a"),))


def test_repeated_tag_sets_are_invalid() -> None:
    with pytest.raises(InvalidUsageAllocations, match="unique set of tags"):
        check_allocations(qty(2), (alloc(1, team="a", env="x"), alloc(1, env="x", team="a")))


def test_at_most_one_untagged_allocation() -> None:
    check_allocations(qty(2), (alloc(1), alloc(1, team="a")))
    with pytest.raises(InvalidUsageAllocations, match="no tags"):
        check_allocations(qty(2), (alloc(1), alloc(1)))


def test_an_empty_allocation_list_is_invalid() -> None:
    with pytest.raises(InvalidUsageAllocations, match="at least one"):
        check_allocations(qty(0), ())


def test_more_than_2500_allocations_are_invalid() -> None:
    many = tuple(alloc(0, n=str(i)) for i in range(2501))
    with pytest.raises(InvalidUsageAllocations, match="2501"):
        check_allocations(qty(0), many)


def test_six_tags_in_one_allocation_is_an_invalid_tag() -> None:
    six = {f"k{i}": "v" for i in range(6)}
    with pytest.raises(InvalidTag, match="greater than 5"):
        check_allocations(qty(1), (alloc(1, **six),))


def test_six_distinct_keys_across_allocations_is_an_invalid_tag() -> None:
    first = alloc(1, k1="v", k2="v", k3="v")
    second = alloc(1, k4="v", k5="v", k6="v")
    with pytest.raises(InvalidTag, match="6 distinct tag keys"):
        check_allocations(qty(2), (first, second))


def test_five_keys_reused_across_allocations_are_fine() -> None:
    keys = {f"k{i}": "a" for i in range(5)}
    other = {f"k{i}": "b" for i in range(5)}
    check_allocations(qty(2), (alloc(1, **keys), alloc(1, **other)))


def test_a_key_twice_in_one_allocation_is_an_invalid_tag() -> None:
    twice = Allocation(qty(1), (Tag("team", "a"), Tag("team", "b")))
    with pytest.raises(InvalidTag, match="more than once"):
        check_allocations(qty(1), (twice,))


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("", "v", "empty"),
        ("k", "", "empty"),
        ("k" * 101, "v", "longer than 100"),
        ("k", "v" * 257, "longer than 256"),
        ("team!", "v", "character"),  # admitted by the model's regex range, not by the guide
        ("k", "a<b", "character"),
        ("k", "ünïcode", "character"),
    ],
)
def test_invalid_tag_text(key: str, value: str, reason: str) -> None:
    with pytest.raises(InvalidTag, match=reason):
        check_allocations(qty(1), (Allocation(qty(1), (Tag(key, value),)),))


def test_the_seller_guide_character_set_is_accepted() -> None:
    text = "aZ09+ -=._:/@"
    check_allocations(qty(1), (Allocation(qty(1), (Tag(text, text),)),))
