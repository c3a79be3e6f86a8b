"""`--attribute` options of the queue and topic commands, parsed once."""

from __future__ import annotations

from unkai.cli.client import CliError


def attribute_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """`NAME=VALUE` pairs (queue and subscription attributes)."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--attribute {pair!r} is not NAME=VALUE", hint="e.g. DelaySeconds=5")
        parsed[name] = value
    return parsed


def message_attributes_of(pairs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`NAME=TYPE:VALUE` pairs as SQS/SNS MessageAttributes."""
    parsed: dict[str, dict[str, str]] = {}
    for pair in pairs:
        name, sep, typed = pair.partition("=")
        data_type, colon, value = typed.partition(":")
        if not sep or not name or not colon:
            raise CliError(
                f"--attribute {pair!r} is not NAME=TYPE:VALUE",
                hint="e.g. color=String:red, count=Number:3, blob=Binary:aGk=",
            )
        key = "BinaryValue" if data_type.startswith("Binary") else "StringValue"
        parsed[name] = {"DataType": data_type, key: value}
    return parsed
