"""MerchandisingService on SQLite and PostgreSQL: drafts with revisions, publishing
numbered versions, rollback, permissions, the change log, areas renamed and deleted,
and the data plane's cached view of the live version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from searchgate.audit.events import AuditFilter
from searchgate.catalog.areas import AreaService
from searchgate.config import Settings
from searchgate.errors import Conflict, Forbidden, InvalidInput, NotFound
from searchgate.merchandising.document import (
    EMPTY,
    BiasingProfile,
    MerchandisingDocument,
    SynonymSet,
)
from searchgate.merchandising.inputs import parse_document
from searchgate.merchandising.service import MerchandisingService
from searchgate.permissions import BUILTIN_ROLES, Actor, CredentialKind, Permission
from searchgate.runtime import Services, build_services
from tests.conftest import ManualClock

AREA = "Production"
TV = {"name": "tv", "terms": ["tv", "television"]}
LAPTOP = {"name": "laptop", "terms": ["laptop", "notebook"]}
REDIRECT = {
    "name": "TV redirect",
    "triggers": [{"type": "queryEquals", "value": "tv"}],
    "redirect": "/tv",
}
PROFILE = {
    "name": "acme",
    "biases": [{"name": "brand", "content": "Acme", "strength": "Weak_Increase"}],
}


def doc(**parts: Any) -> MerchandisingDocument:
    return MerchandisingDocument.model_validate(parts)


def person(role: str, areas: frozenset[str] | None = None, name: str | None = None) -> Actor:
    return Actor(
        kind=CredentialKind.PERSONAL_TOKEN,
        name=name or f"{role}@x.io",
        permissions=BUILTIN_ROLES[role],
        user_id=f"usr_{role}",
        email=f"{role}@x.io",
        areas=areas,
        token_id="tok_1",
    )


ADMIN = Actor.system(name="ops")
MERCH = person("merchandiser")
VIEWER = person("viewer")


@pytest.fixture
def svc(settings: Settings, clock: ManualClock) -> Iterator[Services]:
    services = build_services(settings, clock=clock, monotonic=clock.monotonic)
    yield services
    services.db.dispose()


def merch(services: Services) -> MerchandisingService:
    return services.merchandising


def events(services: Services, prefix: str = "console:merchandising:*") -> list[Any]:
    page = services.audit.query(Actor.system(), AuditFilter(action=prefix))
    return list(reversed(page.events))


# --- drafts ------------------------------------------------------------------------


def test_an_area_never_edited_has_an_empty_draft_and_nothing_live(svc: Services) -> None:
    m = merch(svc)
    draft = m.draft(VIEWER, AREA)
    assert draft.area == AREA and draft.document == EMPTY
    assert (draft.revision, draft.updated_at, draft.updated_by) == (0, None, None)
    assert draft.live_number is None and draft.changed is False
    assert m.versions(VIEWER, AREA) == []
    assert m.live(AREA) is None
    assert m.draft_document(AREA) == EMPTY


def test_saving_the_draft_counts_revisions_and_records_what_changed(
    svc: Services, clock: ManualClock
) -> None:
    m = merch(svc)
    saved = m.save_draft(MERCH, AREA, doc(synonyms=[TV], rules=[REDIRECT]))
    assert saved.revision == 1 and saved.changed and saved.live_number is None
    assert saved.updated_by == MERCH.label and saved.updated_at == clock.now
    assert m.draft(VIEWER, AREA) == saved
    assert m.draft_document(AREA) == saved.document
    # The same document again changes nothing: no revision, no event.
    assert m.save_draft(MERCH, AREA, doc(rules=[REDIRECT], synonyms=[TV]), 1).revision == 1
    again = m.save_draft(MERCH, AREA, doc(synonyms=[TV, LAPTOP], rules=[REDIRECT]), 1)
    assert again.revision == 2
    [first, second] = events(svc)
    assert (first.action, first.target, first.outcome) == (
        "console:merchandising:draft-update",
        AREA,
        "success",
    )
    # Objects and counts, never the document.
    assert first.details == {
        "revision": 1,
        "changes": 2,
        "objects": [
            {"kind": "synonyms", "name": "tv", "change": "added"},
            {"kind": "rules", "name": "TV redirect", "change": "added"},
        ],
    }
    assert second.details["objects"] == [{"kind": "synonyms", "name": "laptop", "change": "added"}]


def test_a_stale_expected_revision_is_a_conflict_and_changes_nothing(svc: Services) -> None:
    m = merch(svc)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV]))
    with pytest.raises(Conflict) as caught:
        m.save_draft(MERCH, AREA, doc(synonyms=[LAPTOP]), expected_revision=0)
    assert caught.value.field == "expectedRevision"
    assert caught.value.details["revision"] == 1
    assert "revision 1" in caught.value.message
    for change in (
        lambda: m.put_object(MERCH, AREA, "synonyms", SynonymSet.model_validate(LAPTOP), 5),
        lambda: m.delete_object(MERCH, AREA, "synonyms", "tv", 0),
        lambda: m.set_default_profile(MERCH, AREA, None, 2),
        lambda: m.publish(ADMIN, AREA, "", expected_revision=0),
    ):
        with pytest.raises(Conflict):
            change()
    assert m.draft(VIEWER, AREA).document == doc(synonyms=[TV])
    assert len(events(svc)) == 1


def test_objects_are_added_replaced_renamed_and_deleted_by_name(svc: Services) -> None:
    m = merch(svc)
    tv = SynonymSet.model_validate(TV)
    assert m.put_object(MERCH, AREA, "synonyms", tv).revision == 1
    m.put_object(MERCH, AREA, "synonyms", SynonymSet.model_validate(LAPTOP))
    wider = SynonymSet.model_validate({**TV, "terms": ["tv", "television", "telly"]})
    draft = m.put_object(MERCH, AREA, "synonyms", wider, 2)
    assert [s.name for s in draft.document.synonyms] == ["tv", "laptop"]
    assert draft.document.synonyms[0].terms == ["tv", "television", "telly"]
    renamed = SynonymSet.model_validate({**TV, "name": "televisions"})
    draft = m.put_object(MERCH, AREA, "synonyms", renamed, replacing="tv")
    # A rename keeps the object's place.
    assert [s.name for s in draft.document.synonyms] == ["televisions", "laptop"]
    with pytest.raises(NotFound):
        m.put_object(MERCH, AREA, "synonyms", tv, replacing="nothing")
    with pytest.raises(Conflict):
        m.put_object(
            MERCH, AREA, "synonyms", SynonymSet.model_validate(LAPTOP), replacing="televisions"
        )
    with pytest.raises(InvalidInput) as wrong_kind:
        m.put_object(MERCH, AREA, "rules", tv)
    assert wrong_kind.value.field == "kind"
    with pytest.raises(InvalidInput):
        m.put_object(MERCH, AREA, "banners", tv)
    draft = m.delete_object(MERCH, AREA, "synonyms", "laptop")
    assert [s.name for s in draft.document.synonyms] == ["televisions"]
    with pytest.raises(NotFound):
        m.delete_object(MERCH, AREA, "synonyms", "laptop")
    assert draft.revision == 5
    details = [e.details for e in events(svc)]
    assert [(d["kind"], d["name"], d["change"]) for d in details] == [
        ("synonyms", "tv", "added"),
        ("synonyms", "laptop", "added"),
        ("synonyms", "tv", "changed"),
        ("synonyms", "televisions", "renamed"),
        ("synonyms", "laptop", "removed"),
    ]
    assert details[3]["from"] == "tv"


def test_the_default_biasing_profile_names_a_profile_of_the_area(svc: Services) -> None:
    m = merch(svc)
    with pytest.raises(InvalidInput) as unknown:
        m.set_default_profile(MERCH, AREA, "acme")
    assert "acme" in unknown.value.message
    m.put_object(MERCH, AREA, "biasingProfiles", BiasingProfile.model_validate(PROFILE))
    draft = m.set_default_profile(MERCH, AREA, "acme")
    assert draft.document.default_biasing_profile == "acme"
    # Renaming the default profile keeps it the default.
    renamed = BiasingProfile.model_validate({**PROFILE, "name": "acme-first"})
    draft = m.put_object(MERCH, AREA, "biasingProfiles", renamed, replacing="acme")
    assert draft.document.default_biasing_profile == "acme-first"
    with pytest.raises(Conflict) as default:
        m.delete_object(MERCH, AREA, "biasingProfiles", "acme-first")
    assert "default" in default.value.message
    assert m.set_default_profile(MERCH, AREA, None).document.default_biasing_profile is None
    m.delete_object(MERCH, AREA, "biasingProfiles", "acme-first")


def test_discarding_the_draft_brings_back_the_live_document(svc: Services) -> None:
    m = merch(svc)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV]))
    m.publish(ADMIN, AREA)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV, LAPTOP], rules=[REDIRECT]))
    draft = m.discard_draft(MERCH, AREA)
    assert draft.document == doc(synonyms=[TV]) and not draft.changed and draft.revision == 3
    discarded = events(svc, "console:merchandising:draft-discard")
    assert [e.details for e in discarded] == [{"revision": 3, "changes": 2}]


# --- publishing and rollback -------------------------------------------------------


def test_publishing_makes_numbered_versions_and_the_live_document(
    svc: Services, clock: ManualClock
) -> None:
    m = merch(svc)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV]))
    with pytest.raises(Forbidden):
        m.publish(MERCH, AREA, "first")
    first = m.publish(ADMIN, AREA, "first", expected_revision=1)
    assert (first.area, first.number, first.note, first.rollback_of) == (AREA, 1, "first", None)
    assert first.published_by == ADMIN.label and first.published_at == clock.now
    assert first.document == doc(synonyms=[TV])
    draft = m.draft(VIEWER, AREA)
    assert draft.live_number == 1 and not draft.changed and draft.revision == 1
    live = m.live(AREA)
    assert live is not None and (live.number, live.document) == (1, first.document)
    with pytest.raises(Conflict) as nothing:
        m.publish(ADMIN, AREA)
    assert "nothing to publish" in nothing.value.message and "version 1" in nothing.value.message
    m.save_draft(MERCH, AREA, doc(synonyms=[TV, LAPTOP]))
    second = m.publish(ADMIN, AREA, "laptops")
    assert second.number == 2
    assert [v.number for v in m.versions(VIEWER, AREA)] == [2, 1]
    assert [v.number for v in m.versions(VIEWER, AREA, limit=1)] == [2]
    assert m.version(VIEWER, AREA, 1) == first
    with pytest.raises(NotFound):
        m.version(VIEWER, AREA, 3)
    published = events(svc, "console:merchandising:publish")
    assert [(e.outcome, e.details) for e in published] == [
        (
            "denied",
            {
                "permission": Permission.MERCH_PUBLISH.value,
                "reason": published[0].details["reason"],
            },
        ),
        ("success", {"version": 1, "changes": 1, "revision": 1, "note": "first"}),
        ("success", {"version": 2, "changes": 1, "revision": 2, "note": "laptops"}),
    ]


def test_an_empty_draft_with_nothing_live_has_nothing_to_publish(svc: Services) -> None:
    with pytest.raises(Conflict) as caught:
        merch(svc).publish(ADMIN, AREA)
    assert "nothing to publish" in caught.value.message
    assert merch(svc).versions(ADMIN, AREA) == []


def test_a_rollback_is_a_new_version_and_leaves_the_draft_alone(svc: Services) -> None:
    m = merch(svc)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV]))
    m.publish(ADMIN, AREA, "one")
    m.save_draft(MERCH, AREA, doc(synonyms=[TV, LAPTOP]))
    m.publish(ADMIN, AREA, "two")
    m.save_draft(MERCH, AREA, doc(rules=[REDIRECT]))
    with pytest.raises(Forbidden):
        m.rollback(MERCH, AREA, 1)
    back = m.rollback(ADMIN, AREA, 1, "laptops were wrong")
    assert (back.number, back.rollback_of, back.note) == (3, 1, "laptops were wrong")
    assert back.document == doc(synonyms=[TV])
    live = m.live(AREA)
    assert live is not None and live.number == 3
    draft = m.draft(VIEWER, AREA)
    assert draft.document == doc(rules=[REDIRECT]) and draft.live_number == 3
    with pytest.raises(Conflict) as same:
        m.rollback(ADMIN, AREA, 1)
    assert "version 1" in same.value.message and "live" in same.value.message
    with pytest.raises(NotFound):
        m.rollback(ADMIN, AREA, 9)
    [event_] = [e for e in events(svc, "console:merchandising:rollback") if e.outcome == "success"]
    assert event_.details == {
        "version": 3,
        "rollbackOf": 1,
        "changes": 1,
        "note": "laptops were wrong",
    }


def test_notes_are_short_plain_text(svc: Services) -> None:
    m = merch(svc)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV]))
    for note in ("x" * 501, "bad\x00note", "bad\x1bnote"):
        with pytest.raises(InvalidInput) as caught:
            m.publish(ADMIN, AREA, note)
        assert caught.value.field == "note"
    assert m.publish(ADMIN, AREA, "two lines\nare fine").note == "two lines\nare fine"


# --- who may do what ---------------------------------------------------------------


def test_reading_needs_areas_read_and_editing_needs_merchandising_edit(svc: Services) -> None:
    m = merch(svc)
    nobody = Actor(kind=CredentialKind.PERSONAL_TOKEN, name="n@x.io", permissions=frozenset())
    with pytest.raises(Forbidden):
        m.draft(nobody, AREA)
    with pytest.raises(Forbidden):
        m.versions(nobody, AREA)
    for edit in (
        lambda: m.save_draft(VIEWER, AREA, doc(synonyms=[TV])),
        lambda: m.put_object(VIEWER, AREA, "synonyms", SynonymSet.model_validate(TV)),
        lambda: m.delete_object(VIEWER, AREA, "synonyms", "tv"),
        lambda: m.set_default_profile(VIEWER, AREA, None),
        lambda: m.discard_draft(VIEWER, AREA),
        lambda: m.save_draft(VIEWER, AREA, doc(), imported=True),
    ):
        with pytest.raises(Forbidden):
            edit()
    denied = [
        (e.action, e.outcome)
        for e in events(svc, "console:merchandising:*")
        if e.outcome == "denied"
    ]
    assert denied == [
        ("console:merchandising:read", "denied"),
        ("console:merchandising:read", "denied"),
        ("console:merchandising:draft-update", "denied"),
        ("console:merchandising:draft-update", "denied"),
        ("console:merchandising:draft-update", "denied"),
        ("console:merchandising:draft-update", "denied"),
        ("console:merchandising:draft-discard", "denied"),
        ("console:merchandising:import", "denied"),
    ]


def test_a_person_limited_to_some_areas_works_in_those_only(svc: Services) -> None:
    svc.areas.create(ADMIN, "Staging")
    m = merch(svc)
    stager = person("merchandiser", areas=frozenset({"Staging"}), name="s@x.io")
    assert m.save_draft(stager, "Staging", doc(synonyms=[TV])).revision == 1
    for call in (
        lambda: m.draft(stager, AREA),
        lambda: m.versions(stager, AREA),
        lambda: m.save_draft(stager, AREA, doc(synonyms=[TV])),
    ):
        with pytest.raises(Forbidden) as caught:
            call()
        assert "area" in caught.value.message
    refused = [e for e in events(svc) if e.outcome == "denied"]
    assert [(e.target, e.details["reason"]) for e in refused] == [
        (AREA, "the area is not open to this role")
    ] * 3


def test_an_unknown_area_is_not_found(svc: Services) -> None:
    m = merch(svc)
    # A NUL (PostgreSQL refuses it in any text) or an overlong name is no area either.
    for area in ("Nowhere", "a\x00b", "x" * 300):
        with pytest.raises(NotFound) as caught:
            m.draft(ADMIN, area)
        assert caught.value.field == "area"
        with pytest.raises(NotFound):
            m.save_draft(ADMIN, area, doc(synonyms=[TV]))
    assert m.live("Nowhere") is None


# --- areas renamed and deleted -----------------------------------------------------


def test_merchandising_follows_an_area_rename_and_goes_with_a_deleted_area(
    svc: Services,
) -> None:
    svc.areas.create(ADMIN, "Staging")
    m = merch(svc)
    m.save_draft(MERCH, "Staging", doc(synonyms=[TV]))
    m.publish(ADMIN, "Staging", "one")
    m.save_draft(MERCH, "Staging", doc(synonyms=[TV, LAPTOP]))
    svc.areas.rename(ADMIN, "Staging", "Preview")
    draft = m.draft(ADMIN, "Preview")
    assert draft.document == doc(synonyms=[TV, LAPTOP]) and draft.revision == 2
    assert [v.number for v in m.versions(ADMIN, "Preview")] == [1]
    assert m.draft_document("Preview") == draft.document
    with pytest.raises(NotFound):
        m.draft(ADMIN, "Staging")
    svc.areas.delete(ADMIN, "Preview")
    # A new area of the same name starts empty.
    svc.areas.create(ADMIN, "Preview")
    fresh = m.draft(ADMIN, "Preview")
    assert fresh.document == EMPTY and fresh.revision == 0
    assert m.versions(ADMIN, "Preview") == []


# --- the data plane's view ---------------------------------------------------------


def test_the_live_version_is_cached_per_process_for_cache_seconds(
    svc: Services, settings: Settings, clock: ManualClock
) -> None:
    m = merch(svc)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV]))
    m.publish(ADMIN, AREA)
    live = m.live(AREA)
    assert live is not None and live.number == 1
    statements: list[str] = []
    event.listen(svc.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    # Another process publishes.
    other = build_services(settings, clock=clock, monotonic=clock.monotonic)
    try:
        om = other.merchandising
        om.save_draft(MERCH, AREA, doc(synonyms=[TV, LAPTOP]))
        om.publish(ADMIN, AREA)
    finally:
        other.db.dispose()
    for _ in range(100):
        assert m.live(AREA) is live
    assert statements == []  # a search costs no database read while the cache holds
    clock.advance(seconds=m.cache_seconds)
    fresh = m.live(AREA)
    assert fresh is not None and fresh.number == 2
    assert fresh.document == doc(synonyms=[TV, LAPTOP])
    assert statements  # read once at expiry
    # This process's own publish shows at once.
    m.rollback(ADMIN, AREA, 1)
    now_live = m.live(AREA)
    assert now_live is not None and now_live.number == 3


def test_an_unchanged_live_version_is_not_read_again_at_expiry(
    svc: Services, clock: ManualClock
) -> None:
    m = merch(svc)
    m.save_draft(MERCH, AREA, doc(synonyms=[TV]))
    m.publish(ADMIN, AREA)
    live = m.live(AREA)
    clock.advance(seconds=m.cache_seconds * 3)
    # The same object: whoever compiled it keeps their work.
    assert m.live(AREA) is live


# --- reading documents and objects from outside ------------------------------------


def test_documents_from_outside_become_invalid_input_with_the_field() -> None:
    assert parse_document({"synonyms": [TV]}) == doc(synonyms=[TV])
    with pytest.raises(InvalidInput) as caught:
        parse_document({"synonyms": [{"name": "tv", "terms": ["tv"]}]})
    assert caught.value.field == "synonyms[0]"
    with pytest.raises(InvalidInput) as caught:
        parse_document({"rules": [{**REDIRECT, "priority": -1}]})
    assert caught.value.field == "rules[0].priority"
    with pytest.raises(InvalidInput) as caught:
        parse_document([1, 2])
    with pytest.raises(InvalidInput) as caught:
        parse_document({"rules": [{**REDIRECT, "redirect": "javascript:alert(1)"}]})
    assert caught.value.field == "rules[0].redirect"
    # A value JSON cannot hold again (an infinite number) is refused before it is kept.
    with pytest.raises(InvalidInput):
        parse_document(
            {
                "biasingProfiles": [
                    {
                        **PROFILE,
                        "biases": [
                            {"name": "n", "content": float("inf"), "strength": "Weak_Increase"}
                        ],
                    }
                ]
            }
        )


def test_the_database_keeps_merchandising_from_outliving_its_area(svc: Services) -> None:
    """The hooks are the way; the foreign key (checked at commit) is the guard."""
    svc.areas.create(ADMIN, "Staging")
    merch(svc).save_draft(MERCH, "Staging", doc(synonyms=[TV]))
    without_hook = AreaService(svc.db, svc.audit, svc.authorizer)
    with pytest.raises(IntegrityError):
        without_hook.delete(ADMIN, "Staging")
    assert merch(svc).draft(ADMIN, "Staging").revision == 1
