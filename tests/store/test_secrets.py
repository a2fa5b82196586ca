"""Secrets at rest (`store/secrets.py`): sealed values open only with their key and in
their place; several keys read, the first writes; a plain value reads as it is."""

from __future__ import annotations

import pytest

from marketmeter.domain.ports import StoreUnavailable
from marketmeter.store.secrets import PREFIX, SecretKeyError, Secrets, generate_key, key_id


def test_a_sealed_value_opens_with_its_key_in_its_place_only() -> None:
    key = generate_key()
    box = Secrets([key])
    sealed = box.seal("wJalrXUtnFEMI/K7MDENG", "access_keys.secret_access_key:AKIA1")
    assert sealed.startswith(f"{PREFIX}{box.current}:")
    assert "wJalrXUtnFEMI" not in sealed
    assert box.open(sealed, "access_keys.secret_access_key:AKIA1") == "wJalrXUtnFEMI/K7MDENG"
    assert box.seal("same", "p") != box.seal("same", "p")  # a nonce of its own each time
    with pytest.raises(StoreUnavailable, match="moved from another row"):
        box.open(sealed, "access_keys.secret_access_key:AKIA2")
    with pytest.raises(StoreUnavailable, match="not among the configured keys"):
        Secrets([generate_key()]).open(sealed, "access_keys.secret_access_key:AKIA1")


def test_the_first_key_seals_and_every_key_opens() -> None:
    old, new = generate_key(), generate_key()
    before = Secrets([old]).seal("secret", "p")
    both = Secrets([new, old])
    assert both.current != Secrets([old]).current
    assert both.open(before, "p") == "secret"
    assert both.needs_sealing(before)
    after = both.seal("secret", "p")
    assert not both.needs_sealing(after)
    assert Secrets([new]).open(after, "p") == "secret"


def test_without_a_key_values_stay_plain_and_plain_values_read_as_they_are() -> None:
    none = Secrets([])
    assert none.current is None
    assert none.seal("secret", "p") == "secret"
    assert not none.needs_sealing("secret")
    assert Secrets([generate_key()]).open("secret", "p") == "secret"
    assert Secrets([generate_key()]).needs_sealing("secret")


@pytest.mark.parametrize(
    "bad", ["short", "x" * 44, "A" * 40], ids=["short", "44 letters", "30 bytes"]
)
def test_a_key_that_is_not_32_bytes_of_base64_is_refused(bad: str) -> None:
    with pytest.raises(SecretKeyError, match="32 bytes in URL-safe base64"):
        Secrets([bad])


def test_key_ids_are_short_and_differ() -> None:
    a, b = generate_key(), generate_key()
    assert len(key_id(a.encode())) == 8
    assert Secrets([a]).current != Secrets([b]).current
