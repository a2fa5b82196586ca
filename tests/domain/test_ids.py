import uuid

from marketmeter.domain.ids import new_ids


def test_ids_are_version_7_uuids_carrying_their_millisecond() -> None:
    ms = 1_767_270_615_123
    ids = new_ids(50, ms)
    assert len(set(ids)) == 50
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert int(text.replace("-", "")[:12], 16) == ms


def test_later_ids_sort_after_earlier_ones() -> None:
    earlier = new_ids(10, 1_000_000)
    later = new_ids(10, 1_000_001)
    assert max(earlier) < min(later)


def test_ids_made_together_ascend_and_ids_made_apart_differ() -> None:
    together = new_ids(70_000, 5)  # past the 16-bit counter: a second run of ids
    assert len(set(together)) == 70_000
    assert together[:0x10000] == sorted(together[:0x10000])
    apart = {i for _ in range(1000) for i in new_ids(1, 5)}
    assert len(apart) == 1000
    for text in (together[0], together[-1]):
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
