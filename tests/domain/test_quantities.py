from decimal import Decimal

from marketmeter.domain.quantities import Quantity, format_decimal


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


def test_text_keeps_what_was_sent() -> None:
    assert Quantity.from_decimal_string("17.50").text == "17.50"
    assert Quantity.from_integer(4).text == "4"


def test_format_decimal_is_the_shortest_exact_text() -> None:
    assert format_decimal(Decimal("17.500")) == "17.5"
    assert format_decimal(Decimal("17.000")) == "17"
    assert format_decimal(Decimal("0.000001")) == "0.000001"
    assert format_decimal(Decimal("1E+2")) == "100"
