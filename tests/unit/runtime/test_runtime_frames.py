"""The frame codec: every encoder round-trips, and the decoder copes with any chunking."""

from __future__ import annotations

import socket
import threading

import pytest

from unkai.runtime import frames


def test_invoke_round_trips() -> None:
    rid = "0" * 35 + "1"
    data = frames.encode_invoke(rid, 1_700_000_000_123, b'{"a": 1}', b'{"trace": "x"}')
    [(kind, body)] = frames.FrameDecoder().feed(data)
    assert kind == frames.INVOKE
    assert frames.decode_invoke(body) == (
        rid,
        1_700_000_000_123,
        b'{"trace": "x"}',
        "",
        b'{"a": 1}',
    )


def test_an_invoke_names_its_adapter() -> None:
    rid = "0" * 35 + "2"
    data = frames.encode_invoke(rid, 3000, b"\x00parts", adapter="unkai.gateway.mapping")
    [(kind, body)] = frames.FrameDecoder().feed(data)
    assert kind == frames.INVOKE
    assert frames.decode_invoke(body) == (rid, 3000, b"", "unkai.gateway.mapping", b"\x00parts")


def test_result_round_trips() -> None:
    data = frames.encode_result(frames.RESULT_ERROR, 12.5, 3.25, 40_000, b"log\n", b'{"e": 1}')
    [(kind, body)] = frames.FrameDecoder().feed(data)
    assert kind == frames.RESULT
    assert frames.decode_result(body) == (
        frames.RESULT_ERROR,
        12.5,
        3.25,
        40_000,
        b"log\n",
        b'{"e": 1}',
    )


def test_decoder_reassembles_frames_split_at_every_byte() -> None:
    stream = frames.frame(frames.LOG, b"abc") + frames.encode_json(frames.READY, {"x": 1})
    decoder = frames.FrameDecoder()
    got = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert got == [(frames.LOG, b"abc"), (frames.READY, b'{"x":1}')]


def test_decoder_rejects_oversized_frames() -> None:
    header = frames.HEADER.pack(frames.MAX_FRAME_BYTES + 1, frames.RESULT)
    with pytest.raises(frames.FrameError):
        frames.FrameDecoder().feed(header)


def test_frame_reader_splits_and_joins_frames_and_reports_eof() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        big = bytes(range(256)) * 4096  # 1 MiB: arrives over several recvs
        ours.sendall(frames.frame(frames.LOG, b"hello") + frames.frame(frames.LOG, b""))
        reader = frames.FrameReader(theirs, recv_bytes=1000)
        assert reader.read() == (frames.LOG, b"hello")
        assert reader.read() == (frames.LOG, b"")
        sender = threading.Thread(target=ours.sendall, args=(frames.frame(frames.RESULT, big),))
        sender.start()
        assert reader.read() == (frames.RESULT, big)
        sender.join()
        ours.close()
        with pytest.raises(EOFError):
            reader.read()
