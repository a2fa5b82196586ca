import pytest

from marketmeter.domain.quantities import Quantity, format_micros
from marketmeter.domain.usage import to_decimal


def test_integer_and_decimal_forms_compare_by_value() -> None:
    forms = [
        Quantity.from_integer(17),
        Quantity.from_decimal_string("17"),
        Quantity.from_decimal_string("17.0"),
        Quantity.from_decimal_string("17.000000"),
    ]
    assert all(a.same_value(b) for a in forms for b in forms)
    assert not forms[0].same_value(Quantity.from_decimal_string("17.000001"))


def test_micros_are_exact_for_the_largest_decimal() -> None:
    q = Quantity.from_decimal_string("9999999999.999999")
    assert q.micros == 9_999_999_999_999_999
    assert str(q.value) == "9999999999.999999"


def test_the_largest_integer_is_exact() -> None:
    assert Quantity.from_integer(2147483647).micros == 2_147_483_647_000_000


def test_text_keeps_what_was_sent() -> None:
    assert Quantity.from_decimal_string("17.50").text == "17.50"
    assert Quantity.from_integer(4).text == "4"


@pytest.mark.parametrize("text", ["1.1234567", "-1", "1e3", "", ".5", "1.", "a"])
def test_other_text_is_no_decimal_quantity(text: str) -> None:
    with pytest.raises(ValueError):
        Quantity.from_decimal_string(text)


def test_format_micros_is_the_shortest_exact_text() -> None:
    assert format_micros(17_500_000) == "17.5"
    assert format_micros(17_000_000) == "17"
    assert format_micros(1) == "0.000001"
    assert format_micros(100_000_000) == "100"


def test_a_report_s_decimal_has_the_digits_of_the_shortest_exact_text() -> None:
    # (Whole amounts take a faster way: the same value and the same digits, no exponent.)
    for micros in (0, 1, 17_000_000, 17_500_000, 1_700_000_000, 10**15, 10**15 + 10**6, 999_999):
        assert str(to_decimal(micros)) == format_micros(micros)
