"""The memory watchdog's probe reads a live process's resident set and stops once it is gone."""

from __future__ import annotations

import subprocess
import sys
import time

from unkai.runtime.limits import RssProbe, read_rss_kb


def test_the_probe_follows_one_process_until_it_exits() -> None:
    # Given a child that holds ~64 MiB resident until its stdin closes
    grow = "b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); input()"
    child = subprocess.Popen([sys.executable, "-c", grow], stdin=subprocess.PIPE)
    try:
        probe = RssProbe(child.pid)
        # When it is sampled, on the same descriptor, until the allocation shows
        deadline = time.monotonic() + 30
        sample = probe.read_kb()
        while (sample or 0) < 60 * 1024 and time.monotonic() < deadline:
            time.sleep(0.01)
            sample = probe.read_kb()
        # Then the samples agree with a fresh read of /proc
        assert sample is not None and sample > 60 * 1024
        fresh = read_rss_kb(child.pid)
        assert fresh is not None and abs(fresh - sample) < 8 * 1024
        # And once the process is reaped, the probe answers None, and keeps answering it
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
        assert probe.read_kb() is None
        assert probe.read_kb() is None
    finally:
        child.kill()
        child.wait(timeout=30)


def test_a_probe_of_a_missing_process_answers_none() -> None:
    probe = RssProbe(2**22 + 12345)  # above the largest pid_max: never a live pid
    assert probe.read_kb() is None
    probe.close()
