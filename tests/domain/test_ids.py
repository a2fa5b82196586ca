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
