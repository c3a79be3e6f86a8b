import uuid

from unkai.invoke.request_ids import new_request_id


def test_ids_are_unique_rfc4122_version_4_uuids_across_buffer_refills() -> None:
    ids = [new_request_id() for _ in range(3000)]
    assert len(set(ids)) == len(ids)
    for value in ids[::97]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
