"""SNS subscription filter policies: every operator matched and refused, both scopes, and each
validation error (https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from unkai.events.filter_policy import FilterPolicy, FilterPolicyError

Attributes = Mapping[str, tuple[str, str | bytes]]


def string(value: str) -> tuple[str, str]:
    return ("String", value)


def number(value: str) -> tuple[str, str]:
    return ("Number", value)


def array(*items: object) -> tuple[str, str]:
    return ("String.Array", json.dumps(list(items)))


def attribute_match(policy: dict[str, Any], attributes: Attributes) -> bool:
    return FilterPolicy.parse(policy).matches_attributes(attributes)


def body_match(policy: dict[str, Any], body: object) -> bool:
    return FilterPolicy.parse(policy, "MessageBody").matches_body(json.dumps(body))


# -- exact values, AND and OR ----------------------------------------------------------------

INTERESTS = {"customer_interests": ["rugby", "tennis"]}


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        (string("rugby"), True),
        (string("tennis"), True),
        (array("rugby", "tennis"), True),
        (array("baseball", "tennis"), True),  # any element of a String.Array
        (string("baseball"), False),
        (array("baseball"), False),
        (array(), False),
        (string("Rugby"), False),  # string matching is case-sensitive
        (("String.custom", "rugby"), True),  # a custom type suffix keeps the base type
    ],
)
def test_exact_string_values_are_ored(attribute: tuple[str, str], expected: bool) -> None:
    assert attribute_match(INTERESTS, {"customer_interests": attribute}) is expected


def test_a_missing_attribute_matches_no_value() -> None:
    assert attribute_match(INTERESTS, {"other": string("rugby")}) is False
    assert attribute_match(INTERESTS, {}) is False


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        (number("301.5"), True),
        (number("3.015e2"), True),
        (("Number.float", "301.50"), True),
        (number("301.500001"), True),  # AWS compares five digits after the point
        (number("301.50001"), False),
        (number("301.6"), False),
        (string("301.5"), False),  # a String attribute is a string, not a number
        (array(301.5, 7), True),
        (number("not-a-number"), False),
    ],
)
def test_exact_numbers_compare_numerically(attribute: tuple[str, str], expected: bool) -> None:
    assert attribute_match({"price_usd": [301.5]}, {"price_usd": attribute}) is expected


def test_a_string_value_in_the_policy_does_not_match_a_number_attribute() -> None:
    assert attribute_match({"price": ["100"]}, {"price": number("100")}) is False


def test_keys_are_anded() -> None:
    # Given a policy on two keys
    policy = {"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]}
    # Then both must match
    both = {"customer_interests": string("rugby"), "price_usd": number("150")}
    assert attribute_match(policy, both) is True
    assert attribute_match(policy, {**both, "price_usd": number("50")}) is False
    assert attribute_match(policy, {"customer_interests": string("rugby")}) is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"flag": True}, True),
        ({"flag": 1}, False),
        ({"flag": "true"}, False),
        ({"nothing": "null"}, False),
        ({"nothing": 0}, False),
    ],
)
def test_true_false_and_null_match_only_themselves(body: dict[str, Any], expected: bool) -> None:
    policy = {"flag": [True], "nothing": [None]}
    given = {"flag": True, "nothing": None, **body}
    assert body_match(policy, given) is expected


def test_null_does_not_match_a_missing_key() -> None:
    assert body_match({"key": [None]}, {}) is False


# -- string operators ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ({"prefix": "bas"}, "baseball", True),
        ({"prefix": "bas"}, "basketball", True),
        ({"prefix": "bas"}, "rugby", False),
        ({"prefix": "bas"}, "Baseball", False),
        ({"suffix": "ball"}, "baseball", True),
        ({"suffix": "ball"}, "rugby", False),
        ({"equals-ignore-case": "RuGbY"}, "rugby", True),
        ({"equals-ignore-case": "rugby"}, "RUGBY", True),
        ({"equals-ignore-case": "rugby"}, "rugby league", False),
    ],
)
def test_string_operators(condition: dict[str, str], value: str, expected: bool) -> None:
    policy = {"sport": [condition]}
    assert attribute_match(policy, {"sport": string(value)}) is expected
    assert body_match(policy, {"sport": value}) is expected


def test_string_operators_do_not_match_numbers() -> None:
    assert attribute_match({"code": [{"prefix": "1"}]}, {"code": number("123")}) is False
    assert body_match({"code": [{"suffix": "3"}]}, {"code": 123}) is False


# -- anything-but ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "attribute", "expected"),
    [
        ("rugby", string("baseball"), True),
        ("rugby", string("rugby"), False),
        (["rugby", "tennis"], string("football"), True),
        (["rugby", "tennis"], string("tennis"), False),
        (["rugby", "tennis"], array("rugby", "baseball"), True),  # an element not listed
        (["rugby", "tennis"], array("rugby", "tennis"), False),
        ([100, 500], number("101"), True),
        ([100, 500], number("100.1"), True),
        ([100, 500], number("100"), False),
        ([100, 500], number("1e2"), False),
        ([100, 500], array(100, 50), True),
        ({"prefix": "order-"}, string("data-entry"), True),
        ({"prefix": "order-"}, string("order_number"), True),
        ({"prefix": "order-"}, string("order-cancelled"), False),
        ({"suffix": "-test"}, string("deploy-prod"), True),
        ({"suffix": "-test"}, string("deploy-test"), False),
    ],
)
def test_anything_but(condition: object, attribute: tuple[str, str], expected: bool) -> None:
    policy = {"key": [{"anything-but": condition}]}
    assert attribute_match(policy, {"key": attribute}) is expected


def test_anything_but_needs_the_key_to_be_present() -> None:
    policy = {"key": [{"anything-but": "whatever"}]}
    assert attribute_match(policy, {}) is False
    # Unless combined with exists: false, as AWS suggests
    either = {"key": [{"anything-but": "whatever"}, {"exists": False}]}
    assert attribute_match(either, {}) is True
    assert attribute_match(either, {"key": string("whatever")}) is False


# -- numeric ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        (["=", 301.5], "301.5", True),
        (["=", 301.5], "301.4", False),
        (["<", 0], "-0.00001", True),
        (["<", 0], "0", False),
        (["<=", 0], "0", True),
        ([">", 0], "0", False),
        ([">", 0], "0.00001", True),
        ([">=", 0], "0", True),
        ([">", 0, "<=", 150], "150", True),
        ([">", 0, "<=", 150], "150.00001", False),
        ([">", 0, "<=", 150], "0", False),
        ([">=", 0, "<", 150], "0", True),
        ([">=", 0, "<", 150], "150", False),
        ([">=", -1e9, "<=", 1e9], "1000000000", True),
        ([">", 0], "1000000001", False),  # beyond the range AWS compares
    ],
)
def test_numeric_comparisons(condition: list[object], value: str, expected: bool) -> None:
    policy = {"price": [{"numeric": condition}]}
    assert attribute_match(policy, {"price": number(value)}) is expected
    body = json.dumps({"price": "X"}).replace('"X"', value)
    assert FilterPolicy.parse(policy, "MessageBody").matches_body(body) is expected


def test_numeric_skips_strings_and_takes_any_array_element() -> None:
    policy = {"price": [{"numeric": [">", 10]}]}
    assert attribute_match(policy, {"price": string("20")}) is False
    assert attribute_match(policy, {"price": array(5, 20)}) is True
    assert body_match(policy, {"price": [1, 2, 30]}) is True
    assert body_match(policy, {"price": [1, 2, 3]}) is False


# -- exists ----------------------------------------------------------------------------------


def test_exists_true_and_false() -> None:
    present = {"store": string("fans"), "customer_interests": array("baseball")}
    absent = {"customer_interests": array("baseball")}
    assert attribute_match({"store": [{"exists": True}]}, present) is True
    assert attribute_match({"store": [{"exists": True}]}, absent) is False
    assert attribute_match({"store": [{"exists": False}]}, present) is False
    assert attribute_match({"store": [{"exists": False}]}, absent) is True


def test_exists_in_the_body_counts_leaf_values_only() -> None:
    assert body_match({"store": [{"exists": True}]}, {"store": None}) is True
    assert body_match({"store": [{"exists": True}]}, {"store": []}) is False
    assert body_match({"store": [{"exists": False}]}, {"store": {"name": "x"}}) is True


def test_binary_attributes_are_ignored() -> None:
    # Given a Binary attribute, which SNS ignores
    attributes: Attributes = {"blob": ("Binary", b"\x00\x01"), "tag": ("Binary.png", b"x")}
    # Then no condition sees it, and for exists it is absent
    assert attribute_match({"blob": [{"exists": True}]}, attributes) is False
    assert attribute_match({"blob": [{"anything-but": "x"}]}, attributes) is False
    assert attribute_match({"blob": [{"exists": False}]}, attributes) is True


def test_unknown_data_types_and_malformed_values_are_ignored() -> None:
    assert attribute_match({"a": [{"exists": True}]}, {"a": ("Weird", "x")}) is False
    assert attribute_match({"a": [{"exists": True}]}, {"a": ("String.Array", "nope")}) is False
    assert attribute_match({"a": [{"exists": True}]}, {"a": ("String", b"\xff")}) is False
    assert attribute_match({"a": ["x"]}, {"a": ("String", b"x")}) is True


# -- cidr ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "address", "expected"),
    [
        ("10.0.0.0/24", "10.0.0.0", True),
        ("10.0.0.0/24", "10.0.0.255", True),
        ("10.0.0.0/24", "10.1.1.0", False),
        ("10.0.0.0/24", "not an address", False),
        ("10.0.0.0/24", "::1", False),
        ("2001:db8::/32", "2001:db8::1", True),
        ("2001:db8::/32", "2001:db9::1", False),
    ],
)
def test_cidr(network: str, address: str, expected: bool) -> None:
    policy = {"source_ip": [{"cidr": network}]}
    assert attribute_match(policy, {"source_ip": string(address)}) is expected


# -- $or -------------------------------------------------------------------------------------

OR_POLICY = {
    "source": ["aws.cloudwatch"],
    "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"source": string("aws.cloudwatch"), "metricName": string("CPUUtilization")}, True),
        ({"source": string("aws.cloudwatch"), "namespace": string("AWS/EC2")}, True),
        ({"source": string("aws.cloudwatch"), "namespace": string("AWS/ES")}, False),
        ({"source": string("aws.events"), "metricName": string("CPUUtilization")}, False),
    ],
)
def test_or_between_keys(attributes: Attributes, expected: bool) -> None:
    assert attribute_match(OR_POLICY, attributes) is expected


def test_or_nests_inside_a_branch_and_inside_a_body_object() -> None:
    # Given $or within $or, and $or within a nested body object
    policy = {
        "$or": [
            {"a": ["1"]},
            {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]},
        ],
        "detail": {"$or": [{"x": ["y"]}, {"z": [{"exists": True}]}]},
    }
    # Then each level picks one branch
    assert body_match(policy, {"a": "1", "detail": {"x": "y"}}) is True
    assert body_match(policy, {"b": "2", "d": "4", "detail": {"z": 0}}) is True
    assert body_match(policy, {"b": "2", "detail": {"x": "y"}}) is False
    assert body_match(policy, {"a": "1", "detail": {"x": "n"}}) is False


@pytest.mark.parametrize(
    "value",
    [
        ["x", "y"],  # not objects
        [{"prefix": "x"}, {"suffix": "y"}],  # objects whose keys are operator keywords
    ],
)
def test_or_that_aws_does_not_recognise_is_an_ordinary_key(value: list[Any]) -> None:
    # Given "$or" that is not an array of two or more plain objects
    policy = FilterPolicy.parse({"$or": value})
    # Then it names an attribute like any other key
    assert policy.matches_attributes({"$or": string("x")}) is True
    assert policy.matches_attributes({"a": string("x")}) is False


def test_or_with_one_branch_is_an_ordinary_key_holding_an_object() -> None:
    with pytest.raises(FilterPolicyError, match="\"\\$or\" -> unknown operator 'a'"):
        FilterPolicy.parse({"$or": [{"a": ["1"]}]})


# -- message body scope ----------------------------------------------------------------------

NESTED = {
    "object": {"key": [{"prefix": "auto-"}, "hardcodedvalue"], "nested_key": [{"exists": False}]},
    "test": [{"exists": False}],
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"object": {"key": "auto-test"}}, True),
        ({"object": {"key": "hardcodedvalue"}}, True),
        ({"object": {"key": "test-auto"}}, False),
        ({"object": {"key": "auto-test"}, "test": "just-exists"}, False),
        ({"object": {"key": "auto-test", "nested_key": "just-exists"}}, False),
        ({"object": {"test": "auto-test"}}, False),
        ({"test": "auto-test"}, False),
    ],
)
def test_nested_keys_follow_nested_objects(body: dict[str, Any], expected: bool) -> None:
    assert body_match(NESTED, body) is expected


def test_nested_policy_matches_any_object_of_an_array() -> None:
    # Given an S3 event, whose Records is an array of objects
    policy = {"Records": {"s3": {"object": {"key": [{"prefix": "uploads/"}]}}}}
    event = {
        "Records": [{"s3": {"object": {"key": "tmp/a"}}}, {"s3": {"object": {"key": "uploads/b"}}}]
    }
    # Then the record that matches is enough
    assert body_match(policy, event) is True
    assert body_match(policy, {"Records": [{"s3": {"object": {"key": "tmp/a"}}}]}) is False


def test_keys_of_one_nested_object_match_within_the_same_array_element() -> None:
    policy = {"items": {"kind": ["book"], "price": [{"numeric": ["<", 10]}]}}
    cheap_book = {"items": [{"kind": "book", "price": 5}]}
    split = {"items": [{"kind": "book", "price": 50}, {"kind": "pen", "price": 5}]}
    assert body_match(policy, cheap_book) is True
    assert body_match(policy, split) is False


def test_exists_false_holds_below_a_missing_path() -> None:
    assert body_match({"a": {"b": [{"exists": False}]}}, {"other": 1}) is True
    assert body_match({"a": {"b": [{"exists": False}]}}, {"a": {"b": 1}}) is False


@pytest.mark.parametrize("body", ["plain text", '"a JSON string"', "[1, 2]", "{broken", "NaN"])
def test_a_body_that_is_not_a_json_object_matches_nothing(body: str) -> None:
    policy = FilterPolicy.parse({"test": [{"exists": False}]}, "MessageBody")
    assert policy.matches_body(body) is False


def test_an_empty_policy_matches_every_message() -> None:
    assert FilterPolicy.parse("{}", "MessageBody").matches_body("plain text") is True
    assert FilterPolicy.parse({}).matches_attributes({}) is True


def test_matches_dispatches_on_the_scope() -> None:
    attributes = {"color": string("red")}
    body = json.dumps({"color": "blue"})
    on_attributes = FilterPolicy.parse({"color": ["red"]})
    on_body = FilterPolicy.parse({"color": ["red"]}, "MessageBody")
    assert on_attributes.matches(attributes, body) is True
    assert on_body.matches(attributes, body) is False


def test_parse_takes_json_text_and_is_deterministic() -> None:
    text = '{"price": [{"numeric": [">", 0, "<=", 1.5]}], "ip": [{"cidr": "10.0.0.0/8"}]}'
    assert FilterPolicy.parse(text) == FilterPolicy.parse(json.loads(text))


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ("[1]", "must be a JSON object, got an array"),
        ("{not json", "not valid JSON"),
        ('{"a": [NaN]}', "NaN is not a JSON number"),
        ({"a": {1, 2}}, "not valid UTF-8 JSON"),
        ({"a": []}, '"a" -> the array of match values is empty'),
        ({"a": "x"}, '"a" -> must be an array of match values or a nested object, got a string'),
        ({"a": {"b": ["x"]}}, '"a" -> nested policy objects need FilterPolicyScope MessageBody'),
        ({"a": [["x"]]}, "got an array"),
        ({"a": [{}]}, "exactly one operator, got []"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "exactly one operator"),
        ({"a": [{"wildcard": "x*"}]}, "unknown operator 'wildcard'"),
        ({"a": [{"prefix": 5}]}, '"a" -> prefix: expects a string, got a number'),
        ({"a": [{"suffix": None}]}, "suffix: expects a string, got null"),
        ({"a": [{"equals-ignore-case": []}]}, "equals-ignore-case: expects a string"),
        ({"a": [{"anything-but": []}]}, "anything-but: the array is empty"),
        ({"a": [{"anything-but": ["x", 1]}]}, "anything-but: takes a string, a number"),
        ({"a": [{"anything-but": True}]}, "anything-but: takes a string, a number"),
        ({"a": [{"anything-but": [None]}]}, "anything-but: takes a string, a number"),
        ({"a": [{"anything-but": {"wildcard": "x"}}]}, 'takes "prefix" or "suffix"'),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "anything-but prefix: the string is empty"),
        ({"a": [{"anything-but": {"suffix": 3}}]}, "anything-but suffix: expects a string"),
        ({"a": [{"exists": "yes"}]}, "exists: expects true or false, got a string"),
        ({"a": [{"exists": None}]}, "exists: expects true or false, got null"),
        ({"a": [{"cidr": "10.0.0.0"}]}, "cidr: '10.0.0.0' is not an IPv4 or IPv6"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "cidr: '10.0.0.0/33'"),
        ({"a": [{"cidr": "ten/8"}]}, "cidr: 'ten/8'"),
        ({"a": [{"cidr": 10}]}, "cidr: expects a string"),
        ({"$or": [{"a": ["1"]}, {}]}, '"$or" -> a branch is an empty object'),
    ],
)
def test_invalid_policies_name_the_key_and_the_problem(policy: Any, problem: str) -> None:
    with pytest.raises(FilterPolicyError, match=f"^FilterPolicy: .*{re.escape(problem)}"):
        FilterPolicy.parse(policy)


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ([], "expects"),
        (5, "expects"),
        ([">"], "expects"),
        (["=", 1, "<"], "expects"),
        ([">", 0, "<", 10, "<", 20], "expects"),
        ([1, "<="], 'each number follows one of = < <= > >=, got [1, "<="]'),
        (["!=", 5], "each number follows one of"),
        (["=", "5"], "expects numbers within -1e9..1e9"),
        (["=", True], "expects numbers within"),
        ([">", 1e10], "expects numbers within -1e9..1e9 (AWS's range), got 10000000000.0"),
        (["<", 100, ">", 10], 'a range is [">" or ">=", low, "<" or "<=", high], in that order'),
        ([">=", 1, ">", 2], "a range is"),
        (["=", 1, "<", 2], "a range is"),
        ([">", 10, "<", 5], "the lower bound 10 must be less than the upper bound 5"),
        ([">", 5, "<=", 5], "the lower bound"),
    ],
)
def test_numeric_mistakes(condition: object, problem: str) -> None:
    with pytest.raises(FilterPolicyError) as raised:
        FilterPolicy.parse({"price": [{"numeric": condition}]})
    message = str(raised.value)
    assert message.startswith('FilterPolicy: "price" -> numeric: ')
    assert problem in message


def test_errors_in_nested_objects_give_the_whole_path() -> None:
    with pytest.raises(FilterPolicyError) as raised:
        FilterPolicy.parse({"detail": {"price": [{"numeric": [">", "x"]}]}}, "MessageBody")
    assert str(raised.value).startswith('FilterPolicy: "detail" -> "price" -> numeric: ')


def test_the_scope_must_be_one_aws_knows() -> None:
    with pytest.raises(FilterPolicyError, match="FilterPolicyScope: 'Body' is not"):
        FilterPolicy.parse({"a": ["x"]}, "Body")  # type: ignore[arg-type]


def test_nesting_is_limited_to_five_levels() -> None:
    five = {"l1": {"l2": {"l3": {"l4": {"l5": ["x"]}}}}}
    assert body_match(five, {"l1": {"l2": {"l3": {"l4": {"l5": "x"}}}}}) is True
    six = {"l1": {"l2": {"l3": {"l4": {"l5": {"l6": ["x"]}}}}}}
    with pytest.raises(FilterPolicyError, match='"l5" -> a nested object needs keys and at most 5'):
        FilterPolicy.parse(six, "MessageBody")


def test_a_nested_object_needs_keys() -> None:
    with pytest.raises(FilterPolicyError, match='"a" -> a nested object needs keys'):
        FilterPolicy.parse({"a": {}}, "MessageBody")


def test_at_most_five_top_level_keys() -> None:
    five = {f"key{i}": ["x"] for i in range(5)}
    FilterPolicy.parse(five)
    with pytest.raises(FilterPolicyError, match="6 top-level keys, more than the 5"):
        FilterPolicy.parse({**five, "key5": ["x"]})
    # Keys inside a nested body object do not count; keys of an $or branch do
    FilterPolicy.parse({**five, "key4": {"a": ["x"], "b": ["y"]}}, "MessageBody")
    with pytest.raises(FilterPolicyError, match="6 top-level keys"):
        FilterPolicy.parse({**five, "$or": [{"c": ["x"]}, {"d": ["y"]}]})


@pytest.mark.parametrize(
    ("policy", "scope"),
    [
        ({"key": [f"value{i}" for i in range(151)]}, "MessageAttributes"),
        ({"k1": [f"v{i}" for i in range(100)], "k2": ["a", "b"]}, "MessageAttributes"),
        # (4 x 6) + (4 x 4 x 4) + (4 x 4 x 4) = 152, across $or branches
        (
            {
                "source": ["aws.cloudwatch", "aws.events", "aws.test", "aws.test2"],
                "$or": [
                    {"metricName": ["CPUUtilization", "ReadLatency", "t1", "t2", "t3", "t4"]},
                    {
                        "metricType": ["MetricType", "TestType", "TestType2", "TestType3"],
                        "$or": [{"metricId": [1234, 4321, 5678, 9012]}, {"spaceId": [1, 2, 3, 4]}],
                    },
                ],
            },
            "MessageAttributes",
        ),
        # nested keys count their depth: 3*4 (c) x 2*3 (e) x 1*3 (f) = 216
        (
            {
                "a": {"b": {"c": ["1", "2", "3", "4"]}},
                "d": {"e": ["1", "2", "3"]},
                "f": ["1", "2", "3"],
            },
            "MessageBody",
        ),
    ],
)
def test_more_than_150_combinations_is_too_complex(policy: dict[str, Any], scope: Any) -> None:
    with pytest.raises(
        FilterPolicyError,
        match=r"too complex, at least \d+ combinations of values where AWS allows 150",
    ):
        FilterPolicy.parse(policy, scope)


def test_exactly_150_combinations_is_accepted() -> None:
    # (3 x 6) + (3 x 4 x 4) + (3 x 4 x 7) = 150
    policy = {
        "source": ["aws.cloudwatch", "aws.events", "aws.test"],
        "$or": [
            {"metricName": ["a", "b", "c", "d", "e", "f"]},
            {
                "metricType": ["w", "x", "y", "z"],
                "$or": [{"metricId": [1, 2, 3, 4]}, {"spaceId": [1, 2, 3, 4, 5, 6, 7]}],
            },
        ],
    }
    FilterPolicy.parse(policy)


def test_the_policy_is_at_most_256_kb() -> None:
    padding = "x" * (256 * 1024)
    with pytest.raises(FilterPolicyError, match=r"bytes, more than the 256 KB allowed"):
        FilterPolicy.parse(json.dumps({"a": [padding]}))
