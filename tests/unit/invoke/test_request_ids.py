import re
import time
import uuid

from unkai.invoke.request_ids import new_gateway_request_id, new_request_id


def test_ids_are_unique_rfc9562_version_7_uuids_across_buffer_refills() -> None:
    ids = [new_request_id() for _ in range(3000)]
    assert len(set(ids)) == len(ids)
    for value in ids[::97]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_ids_lead_with_the_time_so_they_sort_by_millisecond() -> None:
    before_ms = time.time_ns() // 1_000_000
    first = new_request_id()
    time.sleep(0.002)
    second = new_request_id()
    after_ms = time.time_ns() // 1_000_000
    stamp = int(first.replace("-", "")[:12], 16)
    assert before_ms <= stamp <= after_ms
    assert first < second


def test_gateway_ids_take_api_gateway_s_form_and_are_unique_across_buffer_refills() -> None:
    ids = [new_gateway_request_id() for _ in range(3000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", value), value
