"""The frame codec: every encoder round-trips, and the decoder copes with any chunking."""

from __future__ import annotations

import socket

import pytest

from unkai.runtime import frames


def test_invoke_round_trips() -> None:
    rid = "0" * 35 + "1"
    data = frames.encode_invoke(rid, 1_700_000_000_123, b'{"a": 1}', b'{"trace": "x"}')
    [(kind, body)] = frames.FrameDecoder().feed(data)
    assert kind == frames.INVOKE
    assert frames.decode_invoke(body) == (rid, 1_700_000_000_123, b'{"trace": "x"}', b'{"a": 1}')


def test_result_round_trips() -> None:
    data = frames.encode_result(frames.RESULT_ERROR, 12.5, 40_000, b"log\n", b'{"e": 1}')
    [(kind, body)] = frames.FrameDecoder().feed(data)
    assert kind == frames.RESULT
    assert frames.decode_result(body) == (frames.RESULT_ERROR, 12.5, 40_000, b"log\n", b'{"e": 1}')


def test_decoder_reassembles_frames_split_at_every_byte() -> None:
    stream = frames.frame(frames.LOG, b"abc") + frames.encode_json(frames.READY, {"x": 1})
    decoder = frames.FrameDecoder()
    got = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert got == [(frames.LOG, b"abc"), (frames.READY, b'{"x":1}')]


def test_decoder_rejects_oversized_frames() -> None:
    header = frames.HEADER.pack(frames.MAX_FRAME_BYTES + 1, frames.RESULT)
    with pytest.raises(frames.FrameError):
        frames.FrameDecoder().feed(header)


def test_read_frame_reads_one_frame_and_reports_eof() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(frames.frame(frames.LOG, b"hello") + frames.frame(frames.LOG, b""))
        assert frames.read_frame(theirs) == (frames.LOG, b"hello")
        assert frames.read_frame(theirs) == (frames.LOG, b"")
        ours.close()
        with pytest.raises(EOFError):
            frames.read_frame(theirs)
