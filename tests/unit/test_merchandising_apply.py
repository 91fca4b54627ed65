"""What an area's merchandising document does to one search: synonyms, stop words,
triggers, windows, and how several firing rules combine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from searchgate.engines.base import Alternative
from searchgate.engines.tantivy.layout import words
from searchgate.merchandising.apply import CompiledMerchandising, SearchContext, UnknownProfile
from searchgate.merchandising.document import MerchandisingDocument

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def doc(**parts: Any) -> MerchandisingDocument:
    return MerchandisingDocument.model_validate(parts)


def ctx(
    query: str,
    collection: str = "products",
    selected: list[tuple[str, str]] | None = None,
    params: dict[str, str] | None = None,
    profile: str | None = None,
    now: datetime = NOW,
    request_biases: bool = False,
    augment: bool = False,
) -> SearchContext:
    return SearchContext(
        collection=collection,
        query_words=words(query),
        selected=selected or [],
        params=params or {},
        profile=profile,
        request_biases=request_biases,
        augment_biases=augment,
        now=now,
    )


def rule(name: str, trigger: dict[str, Any], **actions: Any) -> dict[str, Any]:
    return {"name": name, "triggers": [trigger], **actions}


def q(value: str, kind: str = "queryEquals") -> dict[str, Any]:
    return {"type": kind, "value": value}


def test_a_two_way_set_widens_each_of_its_terms_and_says_so() -> None:
    m = CompiledMerchandising(doc(synonyms=[{"name": "tv", "terms": ["TV", "television"]}]), 3)
    out = m.outcome(ctx("Sony TV"))
    assert out.alternatives == (Alternative(1, 2, (("television",),)),)
    assert out.rewrites() == ["synonym: tv => television"]
    back = m.outcome(ctx("television"))
    assert back.alternatives == (Alternative(0, 1, (("tv",),)),)
    assert out.debug()["merchandising"] == {"version": 3}


def test_a_one_way_set_widens_only_from_its_terms_and_phrases_match_whole() -> None:
    m = CompiledMerchandising(
        doc(
            synonyms=[
                {
                    "name": "tv",
                    "kind": "one-way",
                    "terms": ["tv"],
                    "to": ["television", "flat screen"],
                },
                {"name": "laptop", "terms": ["laptop", "notebook computer"]},
            ]
        ),
        1,
    )
    out = m.outcome(ctx("tv stand"))
    assert out.alternatives == (Alternative(0, 1, (("television",), ("flat", "screen"))),)
    assert m.outcome(ctx("television")).alternatives == ()
    # A phrase term matches its words next to each other only.
    phrase = m.outcome(ctx("cheap notebook computer"))
    assert phrase.alternatives == (Alternative(1, 3, (("laptop",),)),)
    assert m.outcome(ctx("notebook for computer")).alternatives == ()


def test_the_longest_term_wins_and_sets_sharing_a_term_add_up() -> None:
    m = CompiledMerchandising(
        doc(
            synonyms=[
                {
                    "name": "flat",
                    "kind": "one-way",
                    "terms": ["flat screen tv"],
                    "to": ["television"],
                },
                {"name": "tv1", "terms": ["tv", "telly"]},
                {"name": "tv2", "terms": ["tv", "tube"]},
            ]
        ),
        1,
    )
    out = m.outcome(ctx("flat screen tv"))
    assert out.alternatives == (Alternative(0, 3, (("television",),)),)
    both = m.outcome(ctx("tv"))
    assert both.alternatives == (Alternative(0, 1, (("telly",), ("tube",))),)
    assert both.synonyms[0].set_name == "tv1, tv2"


def test_synonyms_and_stop_words_follow_their_collections() -> None:
    m = CompiledMerchandising(
        doc(
            synonyms=[{"name": "tv", "terms": ["tv", "television"], "collections": ["products"]}],
            stopWords=[{"name": "en", "words": ["the", "for"]}],
        ),
        1,
    )
    assert m.outcome(ctx("tv", collection="articles")).alternatives == ()
    out = m.outcome(ctx("the case for tv"))
    assert out.words == ["case", "tv"]
    assert out.stop_words == ["the", "for"]
    assert "stop words dropped: the for" in out.rewrites()
    # A query of stop words only is searched as typed.
    assert m.outcome(ctx("the")).words == ["the"]


def test_triggers_equal_contain_start_and_all_must_hold() -> None:
    m = CompiledMerchandising(
        doc(
            rules=[
                rule("eq", q("Smart TV"), hide=["a"]),
                rule("has", q("tv sony", "queryContains"), hide=["b"]),
                rule("starts", q("smart", "queryStartsWith"), hide=["c"]),
                {
                    "name": "both",
                    "triggers": [
                        q("tv", "queryContains"),
                        {"type": "customUrlParam", "key": "store", "value": "berlin"},
                        {"type": "navigationSelected", "navigation": "brand", "value": "Sony"},
                    ],
                    "hide": ["d"],
                },
            ]
        ),
        1,
    )
    assert m.outcome(ctx("SMART tv")).fired == ("eq", "starts")
    assert m.outcome(ctx("sony smart tv")).fired == ("has",)
    partial = m.outcome(ctx("tv", params={"store": "berlin"}))
    assert "both" not in partial.fired
    why = {r.name: r.why for r in partial.rules}
    assert why["both"] == "brand = 'Sony' is not selected"
    assert why["eq"] == "the query 'tv' does not equal 'Smart TV'"
    full = m.outcome(ctx("tv", params={"store": "berlin"}, selected=[("brand", "Sony")]))
    assert full.fired == ("both",)
    assert full.hidden == ("d",)


def test_an_active_window_opens_at_from_and_closes_at_to() -> None:
    m = CompiledMerchandising(
        doc(
            rules=[
                rule(
                    "sale",
                    q("tv"),
                    redirect="/sale",
                    activeFrom="2026-12-06T10:00:00Z",
                    activeTo="2026-12-06T14:00:00+02:00",
                )
            ]
        ),
        1,
    )
    at = [datetime(2026, 12, 6, h, m, tzinfo=UTC) for h, m in ((9, 59), (10, 0), (11, 59), (12, 0))]
    assert [m.outcome(ctx("tv", now=t)).redirect for t in at] == [None, "/sale", "/sale", None]
    assert m.outcome(ctx("tv", now=at[3])).rules[0].why.startswith("no longer active")


def test_several_rules_combine_as_documented() -> None:
    m = CompiledMerchandising(
        doc(
            rules=[
                rule(
                    "late",
                    q("tv", "queryContains"),
                    priority=20,
                    redirect="/late",
                    filter="brand:Sony",
                    hide=["x"],
                    pins=[{"id": "p2", "position": 1}],
                    template={"name": "t2", "zones": []},
                    navigations=["price"],
                ),
                rule(
                    "early",
                    q("tv", "queryContains"),
                    priority=10,
                    redirect="/early",
                    filter="price:[0 TO 500]",
                    hide=["y"],
                    pins=[{"id": "p1", "position": 1}],
                    template={
                        "name": "t1",
                        "zones": [{"name": "z", "type": "Content", "content": "hi"}],
                    },
                    navigations=["brand", "price"],
                ),
                rule("off", q("tv", "queryContains"), priority=1, enabled=False, redirect="/off"),
            ]
        ),
        1,
    )
    out = m.outcome(ctx("tv"))
    assert out.fired == ("early", "late")
    assert (out.redirect, out.redirect_rule) == ("/early", "early")
    assert out.filters == [("early", "price:[0 TO 500]"), ("late", "brand:Sony")]
    assert out.hidden == ("y", "x")
    assert out.pins == [("p1", 1), ("p2", 1)]
    assert out.navigations == ["brand", "price"]
    assert out.template_out() == {
        "name": "t1",
        "ruleName": "early",
        "zones": {"z": {"name": "z", "type": "Content", "content": "hi"}},
    }
    late = next(r for r in out.rules if r.name == "late")
    assert set(late.overridden) == {
        "redirect: rule 'early' came first",
        "template: rule 'early' came first",
        "navigations: rule 'early' came first",
    }
    assert out.rules[0].name == "off" and out.rules[0].why == "disabled"


def test_a_biasing_profile_is_asked_for_by_name_or_the_area_default_applies() -> None:
    profiles = [
        {
            "name": "brands",
            "influence": 7,
            "biases": [{"name": "brand", "content": "Sony", "strength": "Strong_Increase"}],
        },
        {
            "name": "cheap",
            "biases": [{"name": "price_band", "content": "low", "strength": "Weak_Increase"}],
        },
    ]
    m = CompiledMerchandising(doc(biasingProfiles=profiles, defaultBiasingProfile="cheap"), 1)
    default = m.outcome(ctx("tv"))
    assert (default.profile, default.profile_source) == ("cheap", "area default")
    asked = m.outcome(ctx("tv", profile="brands"))
    assert (asked.profile, asked.influence) == ("brands", 7)
    assert [b.content for _s, b in asked.biases] == ["Sony"]
    replaced = m.outcome(ctx("tv", profile="brands", request_biases=True))
    assert replaced.biases == [] and replaced.profile_biases_replaced
    augmented = m.outcome(ctx("tv", profile="brands", request_biases=True, augment=True))
    assert len(augmented.biases) == 1
    with pytest.raises(UnknownProfile) as err:
        m.outcome(ctx("tv", profile="nope"))
    assert err.value.known == ["brands", "cheap"]


def test_related_queries_are_listed_for_their_query() -> None:
    m = CompiledMerchandising(
        doc(relatedQueries=[{"name": "tv", "query": "TV", "related": ["tv stand", "soundbar"]}]), 1
    )
    assert m.outcome(ctx("tv")).related == ["tv stand", "soundbar"]
    assert m.outcome(ctx("tv stand")).related == []


@pytest.mark.parametrize(
    ("parts", "says"),
    [
        ({"synonyms": [{"name": "a", "terms": ["tv"]}]}, "at least two terms"),
        ({"synonyms": [{"name": "a", "kind": "one-way", "terms": ["tv"]}]}, "needs 'to'"),
        ({"rules": [{"name": "r", "triggers": [q("tv")]}]}, "a rule needs an action"),
        ({"rules": [{"name": "r", "triggers": [], "hide": ["a"]}]}, "at least 1 item"),
        ({"rules": [rule("r", q("tv"), redirect="javascript:alert(1)")]}, "starts with https://"),
        ({"rules": [rule("r", q("tv"), hide=["a"], activeFrom="2026-12-06T10:00:00")]}, "offset"),
        (
            {
                "rules": [
                    rule(
                        "r",
                        q("tv"),
                        hide=["a"],
                        activeFrom="2026-12-07T00:00:00Z",
                        activeTo="2026-12-06T00:00:00Z",
                    )
                ]
            },
            "before activeTo",
        ),
        (
            {"rules": [rule("r", q("tv"), hide=["a"]), rule("r", q("x"), hide=["b"])]},
            "appears twice",
        ),
        ({"defaultBiasingProfile": "nope"}, "not a biasing profile"),
        ({"synonyms": [{"name": "a", "terms": ["a" * 85 + "\x00", "b"]}]}, "no control"),
        (
            {
                "rules": [
                    rule(
                        "r",
                        q("tv"),
                        template={
                            "name": "t",
                            "zones": [
                                {"name": "z", "type": "Rich_Content", "content": "<b>\x00</b>"}
                            ],
                        },
                    )
                ]
            },
            "no control characters",
        ),
        (
            {
                "biasingProfiles": [
                    {
                        "name": "p",
                        "biases": [
                            {"name": "brand", "content": float("nan"), "strength": "Weak_Increase"}
                        ],
                    }
                ]
            },
            "finite number",
        ),
        (
            {
                "rules": [
                    rule(
                        "r",
                        q("tv"),
                        template={"name": "t", "zones": [{"name": "z", "type": "Record"}]},
                    )
                ]
            },
            "lists 'ids'",
        ),
    ],
)
def test_a_document_that_cannot_work_is_refused_with_the_reason(
    parts: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError) as err:
        doc(**parts)
    assert says in str(err.value)


VOCAB = ["tv", "sony", "smart", "stand", "oak", "the"]


@given(
    triggers=st.lists(
        st.lists(
            st.one_of(
                st.builds(
                    lambda kind, ws: {"type": kind, "value": " ".join(ws)},
                    st.sampled_from(["queryEquals", "queryContains", "queryStartsWith"]),
                    st.lists(st.sampled_from(VOCAB), min_size=1, max_size=3),
                ),
                st.just({"type": "customUrlParam", "key": "store", "value": "berlin"}),
            ),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=12,
    ),
    query=st.lists(st.sampled_from(VOCAB), max_size=4),
    berlin=st.booleans(),
)
def test_the_search_path_fires_exactly_the_rules_the_explanation_names(
    triggers: list[list[dict[str, str]]], query: list[str], berlin: bool
) -> None:
    m = CompiledMerchandising(
        doc(
            rules=[{"name": f"r{i}", "triggers": t, "hide": ["x"]} for i, t in enumerate(triggers)]
        ),
        1,
    )
    c = ctx(" ".join(query), params={"store": "berlin"} if berlin else {})
    explained = m.outcome(c, explain=True)
    assert m.outcome(c, explain=False).fired == explained.fired
    assert {r.name for r in explained.rules if not r.fired} == {
        f"r{i}" for i in range(len(triggers))
    } - set(explained.fired)
