"""docs/aws-compatibility.md is kept true against the code.

For each service section (`## SQS (`sqs`)`), the table rows `| `Operation` | yes|no | ... |` are
checked three ways:
- an operation marked "yes" is in the service's served operations (the front door's table);
- every served operation is in the doc, marked "yes", so adding or removing an operation
  without updating the doc fails here;
- every operation name, "yes" or "no", is one of botocore's for that service (no typos).
No platform runs: the served sets are the modules' own tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session
import pytest

from unkai.aws import lambda_, logs, sns, sqs, sts

DOC = Path(__file__).resolve().parents[3] / "docs" / "aws-compatibility.md"
#: botocore's service name -> what unkai's front door for it serves.
SERVED: Mapping[str, frozenset[str]] = {
    "sqs": sqs.SERVED_OPERATIONS,
    "sns": sns.SERVED_OPERATIONS,
    "lambda": lambda_.SERVED_OPERATIONS,
    "logs": logs.SERVED_OPERATIONS,
    "sts": frozenset(sts.SUPPORTED),
}
SECTION = re.compile(r"^## .+ \(`(?P<service>[a-z0-9-]+)`\)$")
HEADER = "| operation | supported | differences |"
SEPARATOR = "|---|---|---|"
ROW = re.compile(r"^\| `(?P<operation>[A-Za-z0-9]+)` \| (?P<supported>yes|no) \| (?P<rest>.*)\|$")


@dataclass(frozen=True, slots=True)
class Row:
    operation: str
    served: bool
    differences: str
    line: int


def parse_tables(text: str) -> dict[str, list[Row]]:
    """service -> its table's rows. Raises ValueError naming the line of a row, or a table,
    that is not in the doc's format, so a malformed edit fails loudly instead of vanishing."""
    tables: dict[str, list[Row]] = {}
    service: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            match = SECTION.match(line)
            service = match["service"] if match else None
            if service in tables:
                raise ValueError(f"line {number}: a second section for {service!r}")
            if service is not None:
                tables[service] = []
        elif service is not None and line.startswith("|") and line not in (HEADER, SEPARATOR):
            tables[service].append(_row(line, number))
    return tables


def _row(line: str, number: int) -> Row:
    match = ROW.match(line)
    if match is None or "|" in match["rest"].replace("\\|", ""):
        raise ValueError(
            f"line {number}: {line!r} is not '| `Operation` | yes or no | differences |'"
        )
    return Row(match["operation"], match["supported"] == "yes", match["rest"].strip(), number)


@cache
def doc_tables() -> dict[str, list[Row]]:
    return parse_tables(DOC.read_text(encoding="utf-8"))


@cache
def botocore_operations(service: str) -> frozenset[str]:
    model = botocore.session.get_session().get_service_model(service)
    return frozenset(model.operation_names)


def test_the_doc_has_one_table_per_served_service() -> None:
    # Given the doc's sections, When they are parsed, Then there is one per served service
    assert sorted(doc_tables()) == sorted(SERVED)


@pytest.mark.parametrize("service", sorted(SERVED))
def test_every_operation_marked_yes_is_served(service: str) -> None:
    # Given the doc's rows marked "yes"
    marked = {row.operation: row.line for row in doc_tables()[service] if row.served}
    # When they are compared with what the front door serves
    unserved = {op: line for op, line in marked.items() if op not in SERVED[service]}
    # Then none is missing from the code
    assert not unserved, (
        f"docs/aws-compatibility.md marks these {service} operations 'yes' but the code does "
        f"not serve them (operation: line): {unserved}"
    )


@pytest.mark.parametrize("service", sorted(SERVED))
def test_every_served_operation_is_marked_yes(service: str) -> None:
    # Given the operations the front door serves
    marked = {row.operation for row in doc_tables()[service] if row.served}
    # When they are looked up in the doc
    missing = sorted(SERVED[service] - marked)
    # Then each has a "yes" row
    assert not missing, (
        f"{service} serves {missing}, which docs/aws-compatibility.md does not mark 'yes': "
        "add a row (or change its 'no') with its differences from AWS"
    )


@pytest.mark.parametrize("service", sorted(SERVED))
def test_each_operation_has_one_row(service: str) -> None:
    # Given a service's rows, When operations are counted, Then none appears twice
    seen: dict[str, int] = {}
    repeated = []
    for row in doc_tables()[service]:
        if row.operation in seen:
            repeated.append(f"{row.operation} (lines {seen[row.operation]} and {row.line})")
        seen[row.operation] = row.line
    assert not repeated, f"{service}: {', '.join(repeated)}"


@pytest.mark.parametrize("service", sorted(SERVED))
def test_every_operation_named_exists_in_botocore(service: str) -> None:
    # Given every operation the doc names, "yes" or "no"
    rows = doc_tables()[service]
    # When they are looked up in botocore's model of the service
    unknown = [
        f"{r.operation} (line {r.line})"
        for r in rows
        if r.operation not in botocore_operations(service)
    ]
    # Then each one exists (a typo would claim an operation AWS does not have)
    assert not unknown, f"not {service} operations in botocore's model: {', '.join(unknown)}"


def test_lambda_rows_say_which_501s_name_the_operation() -> None:
    # Given the Lambda operations the doc marks "no"
    unserved = {row.operation: row for row in doc_tables()["lambda"] if not row.served}
    named = set(lambda_.UNSERVED.values())
    # When compared with the ones whose 501 names the operation (the rest name the path)
    missing = sorted(named - set(unserved))
    wrong = sorted(
        op for op, row in unserved.items() if ("naming it" in row.differences) != (op in named)
    )
    # Then every one of those is listed, and "naming it" is said of exactly those
    assert not missing, f"lambda_.UNSERVED names {missing}; list them as 'no'"
    assert not wrong, f"'naming it' (vs 'naming the method and path') is wrong for {wrong}"


def test_a_malformed_row_is_an_error_naming_its_line() -> None:
    # Given a service table with a row whose supported column is neither yes nor no
    text = f"## SQS (`sqs`)\n\n{HEADER}\n|---|---|---|\n| `SendMessage` | partly | x |\n"
    # When it is parsed, Then the error names the line
    with pytest.raises(ValueError, match="line 5"):
        parse_tables(text)
