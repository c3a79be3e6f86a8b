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
    assert frames.decode_invoke(body) == (rid, 1_700_000_000_123, b'{"trace": "x"}', b'{"a": 1}')


def test_result_round_trips() -> None:
    data = frames.encode_result(frames.RESULT_ERROR, 12.5, 40_000, b"log\n", b'{"e": 1}')
    [(kind, body)] = frames.FrameDecoder().feed(data)
    assert kind == frames.RESULT
    assert frames.decode_result(body) == (
        frames.RESULT_ERROR,
        12.5,
        40_000,
        b"log\n",
        b"",
        b'{"e": 1}',
    )


def test_a_result_with_its_log_record_gives_the_record_and_the_output_in_it() -> None:
    record = b"START x\nhi \xc3\xa9\nEND x\nREPORT x"
    data = frames.encode_result(frames.RESULT_OK, 1.5, 9, record, b"1", (8, 5))
    [(_, body)] = frames.FrameDecoder().feed(data)
    assert frames.decode_result(body) == (frames.RESULT_OK, 1.5, 9, "hi é".encode(), record, b"1")
    empty = frames.encode_result(frames.RESULT_OK, 1.5, 9, b"START x\nEND x", b"1", (0, 0))
    assert frames.decode_result(frames.FrameDecoder().feed(empty)[0][1])[3:5] == (
        b"",
        b"START x\nEND x",
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
