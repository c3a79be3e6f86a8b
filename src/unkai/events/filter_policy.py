"""SNS subscription filter policies: which published messages a subscription receives
(https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html).

`FilterPolicy.parse` validates a policy once, when it is set, and compiles it into a tree of
condition objects; matching a message then only walks that tree. The pipeline:

1. Load: the JSON text (at most 256 KB of UTF-8) must be an object; numbers are read as
   `Decimal`, and NaN/Infinity are refused because they are not JSON.
2. Compile: each key holds an array of match values (OR) and keys are ANDed. `"$or": [{...},
   {...}]` ORs whole sub-policies, at the top or inside a nested object. In the MessageBody scope a
   key may hold a nested object instead of an array, which follows the same path in the body.
3. Check limits (https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html):
   at most 150 combinations of values, at most 5 top-level keys, numeric operands within
   -1e9..1e9. Nesting is capped at 5 levels here; the AWS pages state no depth limit, so this one is
   ours.
4. Match: message attributes become the same JSON shape the body has (String -> string, Number ->
   number, String.Array -> array; Binary and unknown types are ignored, as SNS ignores Binary), so
   one matcher serves both scopes. A key whose value is an array matches when any element does, and
   a nested policy object matches when any object of an array at that path does.

Parity choices where the AWS pages are silent or contradict themselves:
- JSON types stay apart: a String attribute "5" is not the number 5, and true is not 1.
- anything-but on an array matches when any element is unlisted: that is what the AWS examples
  show (["rugby", "baseball"] passes anything-but rugby), though one sentence says "none listed".
- Keys of one nested policy object must match within the same object of a body array.
- A key spelled with dots ("a.b") is only the literal key; AWS has been seen to also read it as a
  path, undocumented, and we do not.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NoReturn, TypeAlias

Scope = Literal["MessageAttributes", "MessageBody"]
Scalar: TypeAlias = str | Decimal | bool | None
Values: TypeAlias = list[Scalar] | None  # None: the key is absent (or holds no leaf value)
Path: TypeAlias = tuple[str, ...]

MAX_POLICY_BYTES = 256 * 1024
MAX_COMBINATIONS = 150
MAX_TOP_LEVEL_KEYS = 5
MAX_NESTING_LEVELS = 5
NUMBER_LIMIT = Decimal(10**9)
_PRECISION = Decimal("0.00001")  # AWS compares numbers to five decimal places
_SCOPES = ("MessageAttributes", "MessageBody")
_NUMERIC_OPERATORS = ("=", "<", "<=", ">", ">=")
_MISSING = object()


class FilterPolicyError(ValueError):
    """A policy AWS would refuse; the message names the key path, the operator and the problem."""


def _affix(text: str, value: Scalar, prefix: bool) -> bool:
    if not isinstance(value, str):
        return False
    return value.startswith(text) if prefix else value.endswith(text)


def _in_range(bounds: tuple[Decimal | None, bool, Decimal | None, bool], value: Scalar) -> bool:
    low, low_inclusive, high, high_inclusive = bounds
    number = _comparable(value) if isinstance(value, Decimal) else None
    if number is None:
        return False
    above = low is None or number > low or (low_inclusive and number == low)
    return above and (high is None or number < high or (high_inclusive and number == high))


def _in_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network, value: Scalar) -> bool:
    try:
        return isinstance(value, str) and ipaddress.ip_address(value) in network
    except ValueError:
        return False


# How each operator tests one leaf value, given its compiled operand. anything-but needs the key
# to be present (AWS) but then takes any value of any other type.
_TESTS: dict[str, Callable[[Any, Scalar], bool]] = {
    "equals": lambda expected, value: _same(expected, value),
    "prefix": lambda text, value: _affix(text, value, prefix=True),
    "suffix": lambda text, value: _affix(text, value, prefix=False),
    "equals-ignore-case": lambda text, value: isinstance(value, str) and value.lower() == text,
    "anything-but": lambda excluded, value: not any(_same(value, item) for item in excluded),
    "anything-but prefix": lambda text, value: not _affix(text, value, prefix=True),
    "anything-but suffix": lambda text, value: not _affix(text, value, prefix=False),
    "numeric": _in_range,
    "cidr": _in_network,
}


@dataclass(frozen=True, slots=True)
class _Condition:
    """One match value of a key. `exists` looks at presence only (AWS counts leaf values, so an
    empty array or a nested object is absent); every other operator needs a leaf that passes."""

    operator: str
    operand: Any

    def accepts(self, values: Values) -> bool:
        if self.operator == "exists":
            return (values is not None) is self.operand
        test = _TESTS[self.operator]
        return values is not None and any(test(self.operand, value) for value in values)


@dataclass(frozen=True, slots=True)
class _Object:
    """One policy object: every field must match, and one of `alternatives` ($or) when given."""

    fields: tuple[tuple[str, tuple[_Condition, ...] | _Object], ...]
    alternatives: tuple[_Object, ...] = ()


# -- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilterPolicy:
    scope: Scope
    root: _Object

    @classmethod
    def parse(
        cls, policy: str | dict[str, Any], scope: Scope = "MessageAttributes"
    ) -> FilterPolicy:
        """Validate and compile a policy (JSON text or an already decoded object).

        Raises FilterPolicyError naming the key path and the problem. Pure: parsing the same
        policy twice gives equal results.
        """
        if scope not in _SCOPES:
            raise FilterPolicyError(
                f"FilterPolicyScope: {scope!r} is not MessageAttributes or MessageBody"
            )
        root = _parse_object(_load(policy), scope, ())
        _check_limits(root)
        return cls(scope, root)

    def matches_attributes(self, attributes: Mapping[str, tuple[str, str | bytes]]) -> bool:
        """`attributes` maps a name to (DataType, value); DataType may carry a custom suffix."""
        return _match_object(self.root, _attributes_document(attributes))

    def matches_body(self, body: str) -> bool:
        """A body that is not a JSON object matches nothing (AWS needs a JSON object payload),
        except under an empty policy, which filters nothing."""
        if not self.root.fields and not self.root.alternatives:
            return True
        document = _decoded(body)
        return isinstance(document, dict) and _match_object(self.root, document)

    def matches(self, attributes: Mapping[str, tuple[str, str | bytes]], body: str) -> bool:
        """Whether the subscription receives the message, in the policy's own scope."""
        if self.scope == "MessageBody":
            return self.matches_body(body)
        return self.matches_attributes(attributes)


# -- loading and compiling -------------------------------------------------------------------


def _fail(path: Path, problem: str) -> NoReturn:
    where = "".join(f'"{key}" -> ' for key in path)
    raise FilterPolicyError(f"FilterPolicy: {where}{problem}")


def _kind(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "an array"
    return "a string" if isinstance(value, str) else "a number"


def _shown(value: object) -> str:
    """A policy value as JSON text, for error messages (a Decimal as the number it is)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return json.dumps(value, default=str)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _decode(text: str) -> Any:
    """JSON with every number as a Decimal; raises ValueError (or RecursionError)."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant)


def _load(policy: str | Mapping[str, Any]) -> dict[str, Any]:
    try:
        text = policy if isinstance(policy, str) else json.dumps(policy, separators=(",", ":"))
        size_bytes = len(text.encode("utf-8"))
    except (TypeError, ValueError) as exc:  # not JSON types, or not encodable as UTF-8
        raise FilterPolicyError(f"FilterPolicy: not valid UTF-8 JSON: {exc}") from None
    if size_bytes > MAX_POLICY_BYTES:
        raise FilterPolicyError(f"FilterPolicy: {size_bytes} bytes, more than the 256 KB allowed")
    try:
        document = _decode(text)
    except (ValueError, RecursionError) as exc:
        raise FilterPolicyError(f"FilterPolicy: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FilterPolicyError(f"FilterPolicy: must be a JSON object, got {_kind(document)}")
    return document


def _is_or(value: object) -> bool:
    """AWS reads `$or` as the operator only for an array of two or more objects none of which
    has an operator keyword as a key; otherwise `$or` is an ordinary key name."""
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(
            isinstance(branch, dict) and _OPERATORS.keys().isdisjoint(branch) for branch in value
        )
    )


def _parse_object(document: Mapping[str, Any], scope: Scope, path: Path) -> _Object:
    fields: list[tuple[str, tuple[_Condition, ...] | _Object]] = []
    alternatives: tuple[_Object, ...] = ()
    for key, value in document.items():
        if key == "$or" and _is_or(value):
            if not all(value):
                _fail((*path, key), "a branch is an empty object")
            alternatives = tuple(_parse_object(branch, scope, path) for branch in value)
        else:
            fields.append((key, _parse_field(value, scope, (*path, key))))
    return _Object(tuple(fields), alternatives)


def _parse_field(value: object, scope: Scope, path: Path) -> tuple[_Condition, ...] | _Object:
    if isinstance(value, list) and value:
        return tuple(_parse_condition(item, path) for item in value)
    if isinstance(value, list):
        _fail(path, "the array of match values is empty")
    if not isinstance(value, dict):
        _fail(path, f"must be an array of match values or a nested object, got {_kind(value)}")
    if scope == "MessageAttributes":
        _fail(path, "nested policy objects need FilterPolicyScope MessageBody")
    if not value or len(path) >= MAX_NESTING_LEVELS:
        _fail(path, f"a nested object needs keys and at most {MAX_NESTING_LEVELS} levels of keys")
    return _parse_object(value, scope, path)


def _parse_condition(item: object, path: Path) -> _Condition:
    if isinstance(item, str | bool | Decimal) or item is None:
        return _Condition("equals", item)
    if not isinstance(item, dict):
        _fail(path, "a match value must be a string, number, true, false or null, got an array")
    if len(item) != 1:
        _fail(path, f"a match expression holds exactly one operator, got {sorted(item)}")
    ((operator, operand),) = item.items()
    if operator not in _OPERATORS:
        _fail(path, f"unknown operator {operator!r}; use one of {', '.join(sorted(_OPERATORS))}")
    return _Condition(*_OPERATORS[operator](operand, path))


def _text(operand: object, path: Path, operator: str) -> str:
    if not isinstance(operand, str):
        _fail(path, f"{operator}: expects a string, got {_kind(operand)}")
    return operand


def _anything_but(operand: object, path: Path) -> tuple[str, Any]:
    if isinstance(operand, dict):
        if len(operand) != 1 or not operand.keys() <= {"prefix", "suffix"}:
            _fail(
                path,
                f'anything-but: takes "prefix" or "suffix" in an object, got {_shown(operand)}',
            )
        ((affix, text),) = operand.items()
        if not _text(text, path, f"anything-but {affix}"):
            _fail(path, f"anything-but {affix}: the string is empty")
        return f"anything-but {affix}", text
    excluded = tuple(operand) if isinstance(operand, list) else (operand,)
    if not excluded:
        _fail(path, "anything-but: the array is empty")
    if not all(isinstance(item, str) for item in excluded) and not all(
        isinstance(item, Decimal) for item in excluded
    ):
        _fail(path, "anything-but: takes a string, a number, or an array of only one of them")
    return "anything-but", excluded


def _exists(operand: object, path: Path) -> tuple[str, Any]:
    if not isinstance(operand, bool):
        _fail(path, f"exists: expects true or false, got {_kind(operand)}")
    return "exists", operand


def _cidr(operand: object, path: Path) -> tuple[str, Any]:
    text = _text(operand, path, "cidr")
    _address, slash, mask = text.partition("/")
    try:
        if not slash or not mask.isdigit():
            raise ValueError(text)
        return "cidr", ipaddress.ip_network(text, strict=False)
    except ValueError:
        _fail(path, f"cidr: {text!r} is not an IPv4 or IPv6 address/mask-bits like 10.0.0.0/24")


def _numeric(operand: object, path: Path) -> tuple[str, Any]:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        _fail(path, 'numeric: expects ["=", 5], ["<", 5] or a range like [">", 0, "<=", 100]')
    operators = operand[0::2]
    if any(operator not in _NUMERIC_OPERATORS for operator in operators):
        _fail(path, f"numeric: each number follows one of = < <= > >=, got {_shown(operand)}")
    numbers = [_numeric_operand(item, path) for item in operand[1::2]]
    if len(operators) == 1:
        operator, number = operators[0], numbers[0]
        low = number if operator in ("=", ">", ">=") else None
        high = number if operator in ("=", "<", "<=") else None
        return "numeric", (low, operator in ("=", ">="), high, operator in ("=", "<="))
    if operators[0] not in (">", ">=") or operators[1] not in ("<", "<="):
        _fail(path, 'numeric: a range is [">" or ">=", low, "<" or "<=", high], in that order')
    if numbers[0] >= numbers[1]:
        bounds = f"{_shown(operand[1])} must be less than the upper bound {_shown(operand[3])}"
        _fail(path, f"numeric: the lower bound {bounds}")
    return "numeric", (numbers[0], operators[0] == ">=", numbers[1], operators[1] == "<=")


def _numeric_operand(value: object, path: Path) -> Decimal:
    number = _comparable(value) if isinstance(value, Decimal) else None
    if number is None:
        _fail(path, f"numeric: expects numbers within -1e9..1e9 (AWS's range), got {_shown(value)}")
    return number


_OPERATORS: dict[str, Callable[[Any, Path], tuple[str, Any]]] = {
    "prefix": lambda operand, path: ("prefix", _text(operand, path, "prefix")),
    "suffix": lambda operand, path: ("suffix", _text(operand, path, "suffix")),
    "equals-ignore-case": lambda operand, path: (
        "equals-ignore-case",
        _text(operand, path, "equals-ignore-case").lower(),
    ),
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
    "cidr": _cidr,
}


# -- limits ----------------------------------------------------------------------------------


def _check_limits(root: _Object) -> None:
    _combinations(root, depth=1)  # raises first: it also bounds the number of $or branches
    most_keys = max(_top_level_keys(root))
    if most_keys > MAX_TOP_LEVEL_KEYS:
        raise FilterPolicyError(
            f"FilterPolicy: {most_keys} top-level keys, more than the {MAX_TOP_LEVEL_KEYS} AWS "
            "allows (keys in an $or branch count with the keys beside the $or)"
        )


def _combinations(node: _Object, depth: int) -> list[int]:
    """The product per $or alternative of (number of match values x nesting depth) for each key,
    as AWS counts it: 3 values three levels deep and 4 values two levels deep make 3*3 x 4*2."""
    totals = [1]
    for _, child in node.fields:
        if isinstance(child, _Object):
            totals = _cross(totals, _combinations(child, depth + 1))
        else:
            totals = _cross(totals, [len(child) * depth])
    if node.alternatives:
        options = [total for branch in node.alternatives for total in _combinations(branch, depth)]
        totals = _cross(totals, options)
    return totals


def _cross(left: list[int], right: list[int]) -> list[int]:
    crossed = [a * b for a in left for b in right]
    if sum(crossed) > MAX_COMBINATIONS:
        raise FilterPolicyError(
            f"FilterPolicy: too complex, at least {sum(crossed)} combinations of values where AWS "
            f"allows {MAX_COMBINATIONS} (each key's number of values times its nesting depth, "
            "multiplied across keys and added up across $or branches)"
        )
    return crossed


def _top_level_keys(node: _Object) -> list[int]:
    own = len(node.fields)
    if not node.alternatives:
        return [own]
    return [own + keys for branch in node.alternatives for keys in _top_level_keys(branch)]


# -- matching --------------------------------------------------------------------------------


def _match_object(node: _Object, document: Mapping[str, Any]) -> bool:
    for key, child in node.fields:
        value = document.get(key, _MISSING)
        if isinstance(child, _Object):
            if not any(_match_object(child, inner) for inner in _objects(value)):
                return False
        elif not any(condition.accepts(_leaves(value)) for condition in child):
            return False
    return not node.alternatives or any(_match_object(b, document) for b in node.alternatives)


def _objects(value: object) -> list[Mapping[str, Any]]:
    """The objects a nested policy applies to: the object at the path, the objects of an array
    there, or an empty object (so that `exists: false` below a missing path still matches)."""
    if isinstance(value, dict):
        return [value]
    found: list[Mapping[str, Any]] = [item for item in _flatten(value) if isinstance(item, dict)]
    return found or [{}]


def _leaves(value: object) -> Values:
    found: list[Scalar] = [item for item in _flatten(value) if not isinstance(item, dict)]
    return found or None


def _flatten(value: object) -> Iterator[Any]:
    if value is _MISSING:
        return
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _same(left: Scalar, right: Scalar) -> bool:
    """Equality that keeps JSON types apart: "5" is not 5, and true is not 1."""
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return left is right
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        rounded_left, rounded_right = _comparable(left), _comparable(right)
        if rounded_left is None or rounded_right is None:
            return left == right
        return rounded_left == rounded_right
    return isinstance(left, str) and isinstance(right, str) and left == right


def _comparable(number: Decimal) -> Decimal | None:
    """The number rounded to five decimals, or None outside -1e9..1e9 (AWS compares no further)."""
    if not number.is_finite() or abs(number) > NUMBER_LIMIT:
        return None
    return number.quantize(_PRECISION)


def _decoded(text: str) -> Any:
    """The JSON value of a message's text, or _MISSING when it is not JSON."""
    try:
        return _decode(text)
    except (ValueError, RecursionError):
        return _MISSING


def _attributes_document(attributes: Mapping[str, tuple[str, str | bytes]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, (data_type, raw) in attributes.items():
        value = _attribute_value(data_type, raw)
        if value is not _MISSING:
            document[name] = value
    return document


def _attribute_value(data_type: str, raw: str | bytes) -> object:
    """The attribute as a JSON value, or _MISSING for Binary, unknown types and values SNS would
    have refused at Publish (bad UTF-8, a Number that is not one, String.Array that is no array)."""
    base = data_type.partition(".")[0]
    if base not in ("String", "Number"):
        return _MISSING
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return _MISSING
    if data_type == "String.Array":
        array = _decoded(text)
        return array if isinstance(array, list) else _MISSING
    if base == "Number":
        return _number(text)
    return text


def _number(text: str) -> object:
    if "_" in text:  # Decimal reads 1_000; SNS does not
        return _MISSING
    try:
        number = Decimal(text)
    except InvalidOperation:
        return _MISSING
    return number if number.is_finite() else _MISSING
