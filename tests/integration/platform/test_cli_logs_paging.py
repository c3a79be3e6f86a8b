"""`unkai logs` over more than one page of the control API, its time bounds (in the CLI and at
the endpoint), and the CLI's answers to a --url that cannot work: against a real platform.

The window holds more records than one page of the API (`PAGE_RECORDS`, one record per
invocation), so a CLI that prints only the first page leaves out the newest invocations.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.platform_process import PlatformProcess, wait_until, write_app
from unkai.cli.logs import PAGE_RECORDS

STAGE = "clipaging"
FUNCTION = "pager"
LOGS_PATH = f"/_unkai/api/functions/{FUNCTION}/logs"
#: More invocations than one page holds, and a last one that is surely the newest.
EARLY_INVOCATIONS = PAGE_RECORDS + 30
NEWEST = "the-newest-invocation"

HANDLER = """
def hello(event, context):
    print("invocation", event["n"])
    return event["n"]
"""

MANIFEST = f"""
service: paging
functions:
  {FUNCTION}:
    handler: app.hello
"""


@dataclass(frozen=True)
class Paged:
    """The pager's logs: EARLY_INVOCATIONS invocations, then the NEWEST one."""

    total: int


def invoke(http: httpx.Client, n: int | str) -> None:
    answer = http.post(
        f"/2015-03-31/functions/{FUNCTION}/invocations",
        json={"n": n},
        headers={"x-unkai-stage": STAGE},
    )
    assert answer.status_code == 200, answer.text


def stored_reports(platform: PlatformProcess) -> int:
    """REPORT lines the API answers in one big page (up to its maximum of 10,000 records)."""
    with platform.client() as http:
        answer = http.get(
            LOGS_PATH, params={"stage": STAGE, "since_ms": 0, "limit": 10_000, "filter": "REPORT"}
        )
    assert answer.status_code == 200, answer.text
    return len(answer.json()["records"])


@pytest.fixture(scope="module")
def paged(platform: PlatformProcess, tmp_path_factory: pytest.TempPathFactory) -> Paged:
    root = write_app(tmp_path_factory.mktemp("paging-app"), MANIFEST, {"app.py": HANDLER})
    platform.cli("deploy", str(root), "--stage", STAGE, check=True)

    def invoke_range(numbers: range) -> None:
        with platform.client() as http:
            for n in numbers:
                invoke(http, n)

    workers = 8
    with ThreadPoolExecutor(max_workers=workers) as pool:
        chunks = [range(w, EARLY_INVOCATIONS, workers) for w in range(workers)]
        list(pool.map(invoke_range, chunks))
    with platform.client() as http:
        invoke(http, NEWEST)
    total = EARLY_INVOCATIONS + 1
    assert wait_until(lambda: stored_reports(platform) == total)
    return Paged(total)


def printed_invocations(output: str) -> list[str]:
    """The `n` of each `invocation n` line the handler printed (the CLI prefixes a time)."""
    return [
        line.split(" invocation ", 1)[1] for line in output.splitlines() if " invocation " in line
    ]


def test_since_prints_every_record_of_the_window_across_pages(
    platform: PlatformProcess, paged: Paged
) -> None:
    # Given more records since 10 minutes ago than one page of the API holds
    # When the CLI prints them
    done = platform.cli("logs", "-f", FUNCTION, "--stage", STAGE, "--since", "10m", check=True)
    # Then every invocation's START and REPORT is there, the newest included, each once
    lines = done.stdout.splitlines()
    assert sum("START RequestId: " in line for line in lines) == paged.total
    assert sum("REPORT RequestId: " in line for line in lines) == paged.total
    printed = printed_invocations(done.stdout)
    assert sorted(printed) == sorted([*map(str, range(EARLY_INVOCATIONS)), NEWEST])
    assert "left out" not in done.stderr


def test_since_with_filter_pages_too(platform: PlatformProcess, paged: Paged) -> None:
    # Given the same window, When only the handler's lines are asked for
    done = platform.cli(
        "logs",
        "-f",
        FUNCTION,
        "--stage",
        STAGE,
        "--since",
        "10m",
        "--filter",
        "invocation",
        check=True,
    )
    # Then each invocation's line is there, and nothing else
    assert len(done.stdout.splitlines()) == paged.total
    assert NEWEST in done.stdout and "REPORT" not in done.stdout


def test_without_since_the_newest_page_is_printed_with_a_notice(
    platform: PlatformProcess, paged: Paged
) -> None:
    # Given more records than one page, When no start time is given
    done = platform.cli("logs", "-f", FUNCTION, "--stage", STAGE, check=True)
    # Then the newest page is printed, and a notice says older ones were left out and how
    assert sum("REPORT RequestId: " in line for line in done.stdout.splitlines()) == PAGE_RECORDS
    assert NEWEST in done.stdout
    assert "older ones were left out" in done.stderr and "--since" in done.stderr


def test_since_far_in_the_past_means_from_the_oldest_record(
    platform: PlatformProcess, paged: Paged
) -> None:
    # Given a duration that reaches before 1970 (it used to overflow SQLite: HTTP 500)
    # When it is the start time
    done = platform.cli("logs", "-f", FUNCTION, "--stage", STAGE, "--since", "9999999999999w")
    # Then it means "from the beginning", as for a --since before the first record
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert sum("REPORT RequestId: " in line for line in done.stdout.splitlines()) == paged.total


@pytest.mark.parametrize("since", ["10x", "-5m", "soon"])
def test_a_malformed_since_names_the_option_and_the_format(
    platform: PlatformProcess, since: str
) -> None:
    done = platform.cli("logs", "-f", FUNCTION, "--stage", STAGE, "--since", since)
    assert done.returncode == 1
    assert "--since" in done.stderr and "10m" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since_ms", "9999999999999999999999"),
        ("since_ms", "-1"),
        ("until_ms", str(2**63)),
        ("until_ms", "-86400000"),
        ("since_ms", "9" * 5000),
        ("after_id", str(2**64)),
        ("after_id", "-1"),
        ("limit", "-1"),
        ("limit", "0"),
    ],
)
def test_the_endpoint_answers_400_for_an_out_of_range_bound(
    platform: PlatformProcess, paged: Paged, name: str, value: str
) -> None:
    # Given a bound no store can take, sent straight to the control API
    with platform.client() as http:
        answer = http.get(LOGS_PATH, params={"stage": STAGE, name: value})
    # Then the caller is told which parameter is wrong, with a 400, not a 500
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["message"].startswith(f"{name}: must be")


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Failed, without a traceback, with one `error:` line that holds every needle."""
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0], done.stderr


@pytest.mark.parametrize("url", ["localhost:1", "127.0.0.1:1", "ftp://127.0.0.1:1"])
def test_a_url_without_http_is_refused_in_one_line(platform: PlatformProcess, url: str) -> None:
    done = platform.cli("invoke", "-f", "x", "--url", url)
    assert_one_line_error(done, "--url", "http://", repr(url))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening: connecting is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def test_a_url_where_nothing_listens_is_one_line(
    platform: PlatformProcess, closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    done = platform.cli("invoke", "-f", "x", "--url", url)
    assert_one_line_error(done, url)


@pytest.fixture
def hanging_up_server() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts connections and closes them without an answer, as a
    platform that stops mid-request does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def hang_up() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:  # closed
                    return
                with conn:
                    conn.settimeout(30)
                    conn.recv(1024)

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_platform_closing_the_connection_mid_request_is_one_line(
    platform: PlatformProcess, hanging_up_server: str
) -> None:
    done = platform.cli("invoke", "-f", "x", "--url", hanging_up_server)
    assert_one_line_error(done, hanging_up_server, "closed the connection")
