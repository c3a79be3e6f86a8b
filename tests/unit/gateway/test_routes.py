"""RouteTable: precedence as API Gateway HTTP APIs define it, 404 vs 405, greedy paths."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from unkai.gateway.routes import RouteTable, RouteTarget


def table(*routes: tuple[str, str, str]) -> RouteTable:
    return RouteTable.compile((m, p, RouteTarget("dev", fn, f"{m} {p}")) for m, p, fn in routes)


def test_static_route_matches_exact_method_and_path() -> None:
    # Given a static route
    t = table(("GET", "/hello", "hello"))
    # When / Then
    match = t.match("GET", "/hello")
    assert match is not None and match.target.function == "hello"
    assert match.path_parameters == {}
    assert t.match("POST", "/hello") is None
    assert t.match("GET", "/hello/x") is None


def test_literal_beats_parameter_beats_greedy() -> None:
    t = table(
        ("GET", "/items/{id}", "by_id"),
        ("GET", "/items/latest", "latest"),
        ("ANY", "/items/{proxy+}", "catch_all"),
    )
    assert t.match("GET", "/items/latest").target.function == "latest"  # type: ignore[union-attr]
    by_id = t.match("GET", "/items/42")
    assert by_id is not None and by_id.target.function == "by_id"
    assert by_id.path_parameters == {"id": "42"}
    deep = t.match("GET", "/items/a/b/c")
    assert deep is not None and deep.target.function == "catch_all"
    assert deep.path_parameters == {"proxy": "a/b/c"}


def test_method_route_beats_any_on_same_path() -> None:
    t = table(("ANY", "/x", "any"), ("POST", "/x", "post"))
    assert t.match("POST", "/x").target.function == "post"  # type: ignore[union-attr]
    assert t.match("DELETE", "/x").target.function == "any"  # type: ignore[union-attr]


def test_backtracks_from_literal_to_parameter() -> None:
    # Given /a/b/c literal and /a/{x}/d: the request /a/b/d must backtrack to the parameter
    t = table(("GET", "/a/b/c", "literal"), ("GET", "/a/{x}/d", "param"))
    match = t.match("GET", "/a/b/d")
    assert match is not None and match.target.function == "param"
    assert match.path_parameters == {"x": "b"}


def test_allows_path_distinguishes_405_from_404() -> None:
    t = table(("GET", "/users/{id}", "get_user"))
    assert t.allows_path("/users/7")
    assert not t.allows_path("/nothing")


def test_greedy_needs_at_least_one_segment() -> None:
    t = table(("GET", "/files/{path+}", "files"))
    assert t.match("GET", "/files") is None
    match = t.match("GET", "/files/a.txt")
    assert match is not None and match.path_parameters == {"path": "a.txt"}


segment = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6)


@given(st.lists(segment, min_size=1, max_size=5))
def test_any_path_under_a_greedy_root_matches_with_the_whole_rest(parts: list[str]) -> None:
    t = table(("ANY", "/{proxy+}", "root"))
    match = t.match("GET", "/" + "/".join(parts))
    assert match is not None
    assert match.path_parameters == {"proxy": "/".join(parts)}


@given(st.lists(segment, min_size=1, max_size=4), st.sampled_from(["GET", "POST", "PUT"]))
def test_static_routes_match_only_themselves(parts: list[str], method: str) -> None:
    path = "/" + "/".join(parts)
    t = table((method, path, "f"), (method, path + "/more", "g"))
    match = t.match(method, path)
    assert match is not None and match.target.function == "f"
    assert t.match(method, path + "/other") is None


def test_default_route_takes_what_nothing_else_matches_whatever_the_method() -> None:
    t = table(("GET", "/items/{id}", "by_id"), ("ANY", "$default", "fallback"))
    assert t.match("GET", "/items/1").target.function == "by_id"  # type: ignore[union-attr]
    for method, path in [("POST", "/items/1"), ("GET", "/nowhere"), ("DELETE", "/")]:
        found = t.match(method, path)
        assert found is not None and found.target.function == "fallback", (method, path)


@given(
    routes=st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "ANY"]),
            st.lists(st.sampled_from(["a", "b", "{x}", "{y}"]), min_size=0, max_size=3).map(
                lambda parts: "/" + "/".join(parts)
            ),
        ),
        min_size=1,
        max_size=8,
    ),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    request=st.lists(st.sampled_from(["a", "b", "c"]), max_size=4),
)
def test_a_match_is_always_a_route_that_fits_the_request(
    routes: list[tuple[str, str]], method: str, request: list[str]
) -> None:
    # Given any table of literal and parameter routes, and any request
    t = RouteTable.compile((m, p, RouteTarget("dev", "f", f"{m} {p}")) for m, p in routes)
    path = "/" + "/".join(request)
    found = t.match(method, path)
    fitting = [
        (m, p)
        for m, p in routes
        if m in (method, "ANY")
        and len([s for s in p.split("/") if s]) == len(request)
        and all(
            s.startswith("{") or s == r
            for s, r in zip([s for s in p.split("/") if s], request, strict=True)
        )
    ]
    # Then a match exists exactly when some route fits, and it is one of those
    assert (found is not None) == bool(fitting)
    if found is not None:
        assert tuple(found.target.route_key.split(" ", 1)) in fitting


def test_each_route_gets_its_own_parameter_names() -> None:
    t = table(
        ("GET", "/items/{id}", "by_id"),
        ("GET", "/items/{itemId}/tags", "tags"),
        ("ANY", "/x/{proxy+}", "x_any"),
        ("POST", "/x/{rest+}", "x_post"),
    )
    tags = t.match("GET", "/items/5/tags")
    assert tags is not None and tags.path_parameters == {"itemId": "5"}
    by_id = t.match("GET", "/items/5")
    assert by_id is not None and by_id.path_parameters == {"id": "5"}
    post = t.match("POST", "/x/a/b")
    assert post is not None and post.path_parameters == {"rest": "a/b"}
    other = t.match("GET", "/x/a/b")
    assert other is not None and other.path_parameters == {"proxy": "a/b"}
