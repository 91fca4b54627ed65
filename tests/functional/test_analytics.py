"""Search analytics through the app: searches run through the search API are counted,
flushed, and shown on the Analytics page and in its CSV exactly as they were run, with
the rules that fired and the redirects; zero-result queries link to a new synonym or
rule for whoever may edit merchandising; with analytics off nothing is counted; old
days are deleted after the retention; the page's parameters never answer 5xx."""

from __future__ import annotations

import csv
import html
import io
import random
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from searchgate.webapp import create_app
from tests.conftest import ManualClock, load, make_user
from tests.functional.console_support import sign_in, use_https

# (area, collection, query as typed): "laptop" finds records of the demo catalog,
# "qqxxzzv" finds none, "" is a browse. Typed variants count as one normalised query.
STREAM = [
    ("Production", "default", "laptop"),
    ("Production", "default", "Laptop"),
    ("Production", "default", "  laptop "),
    ("Production", "default", "qqxxzzv"),
    ("Production", "default", "qqxxzzv"),
    ("Production", "default", ""),
    ("Production", "spare", "laptop"),
    ("Staging", "default", "qqxxzzv"),
    ("Staging", "default", "headphones"),
]


def _search(client: TestClient, auth: dict[str, str], area: str, coll: str, q: str) -> int:
    r = client.post(
        "/api/v1/search",
        json={"collection": coll, "area": area, "query": q, "disableAutocorrection": True},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    total: int = r.json()["totalRecordCount"]
    return total


def _run_stream(client: TestClient, rt: Runtime, auth: dict[str, str]) -> dict[str, Counter[str]]:
    """Runs STREAM; returns the expected figures, worked out from the API's answers."""
    load(client, auth, "default", list(generate(120)), demo_settings())
    load(client, auth, "spare", list(generate(20, seed=7)), demo_settings())
    rt.services.areas.create(Actor.system(), "Staging")
    searches: Counter[str] = Counter()
    zero: Counter[str] = Counter()
    per_query: Counter[str] = Counter()
    zero_query: Counter[str] = Counter()
    for area, coll, q in STREAM:
        total = _search(client, auth, area, coll, q)
        key = f"{area}/{coll}"
        normal = " ".join(q.lower().split())
        searches[key] += 1
        if normal:
            per_query[f"{key}/{normal}"] += 1
        if not total:
            zero[key] += 1
            if normal:
                zero_query[f"{key}/{normal}"] += 1
    # Previews of the Command Center are not shoppers' searches.
    rt.query_log.flush()
    return {"searches": searches, "zero": zero, "query": per_query, "zero_query": zero_query}


def _viewer(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    r = sign_in(client, "vic@example.com")
    assert r.status_code in (302, 303), r.text


def _rows(page: str, testid: str) -> list[tuple[str, int, int]]:
    table = re.search(rf'data-testid="{testid}".*?</table>', page, re.S)
    assert table, page
    rows = re.findall(
        r'<tr data-testid="[a-z-]+"><td>([^<]*)</td><td class="num">([\d,]+)</td>'
        r'<td class="num">([\d,]+)</td></tr>',
        table.group(0),
    )
    return [
        (html.unescape(q), int(a.replace(",", "")), int(b.replace(",", ""))) for q, a, b in rows
    ]


def _sum(counter: Counter[str], prefix: str = "") -> int:
    return sum(n for k, n in counter.items() if k.startswith(prefix))


def _by_query(counter: Counter[str], prefix: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for k, n in counter.items():
        if k.startswith(prefix):
            out[k.rsplit("/", 1)[1]] += n
    return out


def _section(text: str, header: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    start = rows.index(next(r for r in rows if r and r[0] == header))
    out = []
    for r in rows[start + 1 :]:
        if not r:
            break
        out.append(r)
    return out


def test_the_page_and_its_csv_show_exactly_the_searches_run(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    want = _run_stream(client, rt, auth)
    assert _sum(want["zero"]) == 3 and _sum(want["searches"]) == len(STREAM)
    _viewer(client, rt)
    today = rt.services.analytics.report(7).last.isoformat()
    for params in (
        {},
        {"days": "7", "area": "Production"},
        {"days": "90", "area": "Production", "collection": "default"},
        {"days": "30", "collection": "default"},
    ):
        r = client.get("/analytics", params=params)
        assert r.status_code == 200, r.text
        page = r.text
        keys = [
            k
            for k in want["searches"]
            if params.get("area", k.split("/")[0]) == k.split("/")[0]
            and params.get("collection", k.split("/")[1]) == k.split("/")[1]
        ]
        searches = sum(want["searches"][k] for k in keys)
        zeros = sum(want["zero"][k] for k in keys)
        queries: Counter[str] = Counter()
        zero_queries: Counter[str] = Counter()
        for k in keys:
            queries.update(_by_query(want["query"], k + "/"))
            zero_queries.update(_by_query(want["zero_query"], k + "/"))
        assert f'data-testid="total-searches">{searches}<' in page, params
        assert f'data-testid="total-zero">{zeros}<' in page, params
        assert 'data-testid="trend-chart"' in page and "<svg" in page
        shown = {q: (n, z) for q, n, z in _rows(page, "top-queries")}
        assert shown == {q: (n, zero_queries[q]) for q, n in queries.items()}, params
        shown_zero = {q: (z, n) for q, z, n in _rows(page, "zero-queries")}
        assert shown_zero == {q: (z, queries[q]) for q, z in zero_queries.items()}, params
        # The most searched first.
        assert _rows(page, "top-queries")[0][0] == queries.most_common(1)[0][0]

        export = client.get("/analytics/export.csv", params=params)
        assert export.status_code == 200
        assert export.headers["content-type"].startswith("text/csv")
        days = _section(export.text, "day")
        assert len(days) == int(params.get("days", "30"))
        assert days[-1][0] == today
        assert [int(d[1]) for d in days[:-1]] == [0] * (len(days) - 1)
        assert days[-1][1:3] == [str(searches), str(zeros)]
        assert {r[0]: (int(r[1]), int(r[2])) for r in _section(export.text, "top query")} == {
            q: (n, zero_queries[q]) for q, n in queries.items()
        }
        zero_rows = _section(export.text, "zero-result query")
        assert {r[0]: (int(r[1]), int(r[2])) for r in zero_rows} == {
            q: (z, queries[q]) for q, z in zero_queries.items()
        }

    # The Overview shows the trend to whoever may see analytics.
    overview = client.get("/").text
    assert 'data-testid="dash-trend"' in overview
    assert f"<strong>{len(STREAM)}</strong> searches" in overview


def test_a_role_limited_to_an_area_sees_only_that_area(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    want = _run_stream(client, rt, auth)
    rt.services.roles.create(
        Actor.system(), "Staging viewer", ["console:analytics:view"], areas=["Staging"]
    )
    use_https(client)
    make_user(rt.services, "sam@example.com", "Staging viewer")
    sign_in(client, "sam@example.com")
    page = client.get("/analytics").text
    staging = _sum(want["searches"], "Staging/")
    assert f'data-testid="total-searches">{staging}<' in page
    assert client.get("/analytics", params={"area": "Production"}).status_code == 403
    assert client.get("/analytics/export.csv", params={"area": "Production"}).status_code == 403


@pytest.mark.manual_clock
def test_days_older_than_the_retention_are_deleted(
    client: TestClient, rt: Runtime, auth: dict[str, str], app_clock: ManualClock
) -> None:
    _run_stream(client, rt, auth)
    _viewer(client, rt)
    first_day = app_clock().date()

    def shown(days: str) -> int:
        # Sessions end while the clock moves by weeks: a fresh one each time.
        sign_in(client, "vic@example.com")
        page = client.get("/analytics", params={"days": days}).text
        found = re.search(r'data-testid="total-searches">([\d,]+)<', page)
        assert found, page
        return int(found.group(1).replace(",", ""))

    assert shown("90") == len(STREAM)
    # 89 days later the first day is still one of the 90 kept.
    app_clock.advance(days=89)
    assert rt.query_log.prune() == 0
    assert shown("90") == len(STREAM)
    assert shown("30") == 0
    # A day later it is past the retention: gone from the database, not only from view.
    app_clock.advance(days=1)
    assert rt.query_log.first_kept_day() == first_day + timedelta(days=1)
    assert rt.query_log.prune() == 3  # Production/default, Production/spare, Staging/default
    assert rt.query_log.prune() == 0
    app_clock.advance(days=-1)
    assert shown("90") == 0


PARAM = st.text(max_size=70) | st.sampled_from(["7", "30", "90", "Production", "default", ""])


def test_no_parameter_answers_5xx(client: TestClient, rt: Runtime, auth: dict[str, str]) -> None:
    load(client, auth, "default", list(generate(5)), demo_settings())
    _viewer(client, rt)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(days=PARAM, area=PARAM, collection=PARAM)
    def check(days: str, area: str, collection: str) -> None:
        params = {"days": days, "area": area, "collection": collection}
        for path in ("/analytics", "/analytics/export.csv"):
            r = client.get(path, params=params)
            assert r.status_code in (200, 400, 403), (path, params, r.status_code)

    check()


RULES = ["TV boost", "Sale: 50% & more", "<b>Pinned</b>", "Socks"]
REDIRECTS = ["TV page", "Help page"]


def _known_rule_stream(rt: Runtime, seed: int = 13) -> list[tuple[str, str, str, int, int]]:
    """Feeds the query log a known stream of searches, with the rules that fired and
    the redirect returned, as the search service reports them; returns the expected
    (area, collection, rule, searches it fired on, searches it redirected)."""
    rng = random.Random(seed)
    fired: Counter[tuple[str, str, str]] = Counter()
    redirected: Counter[tuple[str, str, str]] = Counter()
    for i in range(400):
        area = rng.choice(["Production", "Production", "Staging"])
        coll = rng.choice(["default", "spare"])
        rules = tuple(rng.choice(RULES) for _ in range(rng.randrange(4)))
        redirect = rng.choice(REDIRECTS) if rng.random() < 0.2 else None
        rt.query_log.count_search(area, coll, f"query {i % 7}", None, i % 3, rules, redirect)
        for rule in set(rules) | ({redirect} if redirect else set()):
            fired[(area, coll, rule)] += 1
        if redirect:
            redirected[(area, coll, redirect)] += 1
    rt.query_log.flush()
    return [(a, c, r, n, redirected[(a, c, r)]) for (a, c, r), n in fired.items()]


def _cells(page: str, testid: str, row: str) -> list[list[str]]:
    table = re.search(rf'data-testid="{testid}".*?</table>', page, re.S)
    assert table, page
    rows = re.findall(rf'<tr data-testid="{row}">(.*?)</tr>', table.group(0), re.S)
    return [
        [html.unescape(re.sub(r"<[^>]*>", "", c)).replace(",", "") for c in cells]
        for cells in (re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in rows)
    ]


def test_rules_that_fired_and_redirects_equal_a_known_stream(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(5)), demo_settings())
    load(client, auth, "spare", list(generate(5, seed=7)), demo_settings())
    rt.services.areas.create(Actor.system(), "Staging")
    stream = _known_rule_stream(rt)
    _viewer(client, rt)
    for params in (
        {},
        {"days": "7", "area": "Production"},
        {"days": "90", "area": "Staging", "collection": "spare"},
        {"collection": "default"},
    ):
        fired: Counter[tuple[str, str]] = Counter()
        redirected: Counter[tuple[str, str]] = Counter()
        for a, c, rule, n, r in stream:
            if params.get("area", a) == a and params.get("collection", c) == c:
                fired[(a, rule)] += n
                redirected[(a, rule)] += r
        assert fired and sum(redirected.values()), params
        page = client.get("/analytics", params=params).text
        assert 'data-testid="analytics-off"' not in page
        # With one area chosen its name is not repeated on every row.
        chosen = params.get("area")
        shown = {
            (chosen or r[0], r[-3]): (int(r[-2]), int(r[-1]))
            for r in _cells(page, "rules-fired", "rule-fired")
        }
        assert shown == {k: (n, redirected[k]) for k, n in fired.items()}, params
        shown_redirects = {
            (chosen or r[0], r[-2]): int(r[-1]) for r in _cells(page, "redirects", "redirect")
        }
        assert shown_redirects == {k: n for k, n in redirected.items() if n}, params
        # The most fired first.
        first = _cells(page, "rules-fired", "rule-fired")[0]
        assert int(first[-2]) == max(fired.values())

        export = client.get("/analytics/export.csv", params=params).text
        rows = _section(export, "rule that fired")
        assert {(r[1], r[0]): (int(r[2]), int(r[3])) for r in rows} == {
            k: (n, redirected[k]) for k, n in fired.items()
        }
        rows = _section(export, "redirect rule")
        assert {(r[1], r[0]): int(r[2]) for r in rows} == {k: n for k, n in redirected.items() if n}


def test_zero_result_queries_start_a_synonym_or_a_rule_for_whoever_may_edit(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(5)), demo_settings())
    rt.services.areas.create(Actor.system(), "Staging")
    log = rt.query_log
    log.count_search("Production", "default", "日本 テレビ", None, 0)
    log.count_search("Production", "default", "Tv Stand", None, 0)
    log.count_search("Staging", "default", "tv stand", None, 0)
    log.count_search("Production", "default", "laptop", None, 3)
    log.flush()
    use_https(client)
    make_user(rt.services, "mia@example.com", "merchandiser")
    make_user(rt.services, "vic@example.com", "viewer")
    sign_in(client, "mia@example.com")

    def links(page: str) -> set[tuple[str, str]]:
        table = re.search(r'data-testid="zero-queries".*?</table>', page, re.S)
        assert table, page
        found = re.findall(
            r'<a href="([^"]+)"(?: aria-label="([^"]+)")?>([^<]+)</a>', table.group(0)
        )
        return {(html.unescape(href), html.unescape(label or text)) for href, label, text in found}

    synonym = "/areas/{}/merchandising/synonyms/new?term={}"
    rule = "/areas/{}/merchandising/rules/new?query={}"
    tv, japan = "tv%20stand", "%E6%97%A5%E6%9C%AC%20%E3%83%86%E3%83%AC%E3%83%93"
    page = client.get("/analytics", params={"area": "Production"}).text
    assert links(page) == {
        (synonym.format("Production", tv), "Add a synonym"),
        (rule.format("Production", tv), "Add a rule"),
        (synonym.format("Production", japan), "Add a synonym"),
        (rule.format("Production", japan), "Add a rule"),
    }
    # Of all areas, a query links to each area where it found nothing.
    page = client.get("/analytics").text
    assert links(page) == {
        (synonym.format("Production", tv), "Add a synonym in Production"),
        (rule.format("Production", tv), "Add a rule in Production"),
        (synonym.format("Staging", tv), "Add a synonym in Staging"),
        (rule.format("Staging", tv), "Add a rule in Staging"),
        (synonym.format("Production", japan), "Add a synonym in Production"),
        (rule.format("Production", japan), "Add a rule in Production"),
    }

    # Each link opens its form in the area's draft, started from the query.
    for href, _label in links(page):
        form = client.get(href)
        assert form.status_code == 200, (href, form.text)
        assert "tv stand" in form.text or "日本 テレビ" in form.text, href

    sign_in(client, "vic@example.com")
    page = client.get("/analytics").text
    assert 'data-testid="zero-query"' in page
    assert links(page) == set() and "/merchandising/" not in page


def test_with_analytics_off_searches_are_not_counted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARCHGATE_ANALYTICS_ENABLED", "false")
    off = Settings(**settings.model_dump(exclude={"analytics_enabled"}))
    assert off.analytics_enabled is False
    with TestClient(create_app(off), raise_server_exceptions=False) as client:
        rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        secret = rt.services.keys.create(Actor.system(), "all", ALL_SCOPES).secret
        auth = {"Authorization": f"Bearer {secret}"}
        load(client, auth, "default", list(generate(120)), demo_settings())
        assert _search(client, auth, "Production", "default", "laptop") > 0
        assert _search(client, auth, "Production", "default", "qqxxzzv") == 0
        rt.query_log.flush()
        # Suggestions are part of search, not of analytics: they still learn.
        assert rt.query_log.completions("default", "lap", 5) == [("laptop", 1)]
        _viewer(client, rt)
        page = client.get("/analytics").text
        assert 'data-testid="total-searches">0<' in page
        assert 'data-testid="analytics-off"' in page
        assert rt.services.analytics.report(90).searches == 0
    operations = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    assert "`SEARCHGATE_ANALYTICS_ENABLED`" in operations.read_text()
