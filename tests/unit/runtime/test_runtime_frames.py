"""The frame codec: every encoder round-trips, and the decoder copes with any chunking."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from pathlib import Path

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


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _voluntary_switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches line")


def test_a_waiting_reader_is_not_woken_when_its_reply_is_read() -> None:
    """An instance waits for the next INVOKE while the platform reads its RESULT. Reading
    frees the room that RESULT took, and the kernel then wakes whoever sleeps on the
    instance's socket; a reader blocked in `recv` would wake and sleep again each time."""
    ours, theirs = socket.socketpair()
    rounds = 100
    pid = os.fork()
    if pid == 0:  # the instance: answer every frame with one, until EOF
        code = 0
        try:
            ours.close()
            reader = frames.FrameReader(theirs)
            while True:
                try:
                    _, body = reader.read()
                except EOFError:
                    break
                theirs.sendall(frames.frame(frames.RESULT, body))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    try:
        decoder = frames.FrameDecoder()
        before = _voluntary_switches(pid)
        for index in range(rounds):
            ours.sendall(frames.frame(frames.INVOKE, b"%d" % index))
            select.select([ours], [], [], 5.0)
            deadline = time.monotonic() + 5.0
            while _state(pid) != "S" and time.monotonic() < deadline:
                time.sleep(0.0002)  # until it waits for the next frame
            assert decoder.feed(ours.recv(100)) == [(frames.RESULT, b"%d" % index)]
            time.sleep(0.0005)  # room for a spurious wake-up to happen
        switches = _voluntary_switches(pid) - before
    finally:
        ours.close()
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # One sleep per frame it waited for; a reader woken by each read would take two.
    assert rounds <= switches < rounds * 1.5, switches
