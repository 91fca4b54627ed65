"""Closed sets of strings are enums whose values are the strings stored and sent before
(no migration, the same JSON), so a misspelt member fails at import, not at run time."""

from __future__ import annotations

from enum import StrEnum

import orjson

from searchgate.accounts.models import InvitationState, SessionState, TokenState, UserState
from searchgate.db import JsonText
from searchgate.keys.info import KeyState
from searchgate.rotation.common import STEP_TITLES, STEPS, UNFINISHED, RotationStatus, Step
from searchgate.rotation.events import EventKind, RotationEvent, RunOutcome
from searchgate.rotation.jobs import JobMode, JobState


def test_the_values_are_the_strings_stored_and_sent_before() -> None:
    assert [s.value for s in STEPS] == [
        "preconditions",
        "create-key",
        "store-write",
        "verify",
        "drain",
        "confirm",
    ]
    assert set(STEP_TITLES) == set(Step)
    assert {s.value for s in RotationStatus} == {"running", "failed", "finished", "aborted"}
    assert set(UNFINISHED) == {"running", "failed"}
    assert {k.value for k in KeyState} == {"active", "disabled", "expired", "deleted"}
    assert {s.value for s in UserState} == {"active", "disabled"}
    assert {o.value for o in RunOutcome} == {
        "finished",
        "already-finished",
        "nothing-to-do",
        "dry-run",
        "aborted",
        "no-rotation",
    }
    assert {m.value for m in JobMode} == {"run", "abort"}
    assert {s.value for s in TokenState} == {"active", "expired", "revoked"}
    assert {s.value for s in InvitationState} == {"pending", "accepted", "withdrawn", "expired"}
    assert {s.value for s in JobState} == {"running", "aborting", "failed", "stopped"}
    assert {s.value for s in SessionState} == {"active", "mfa_pending"}
    assert {k.value for k in EventKind} == {
        "info",
        "warning",
        "step",
        "step-done",
        "waiting",
        "plan",
    }


def test_members_compare_and_serialize_as_their_strings() -> None:
    enums = (Step, RotationStatus, KeyState, EventKind, UserState, SessionState, RunOutcome)
    for enum in (*enums, JobMode, JobState, TokenState, InvitationState):
        assert issubclass(enum, StrEnum)
    assert {"create-key": 1}[Step.CREATE_KEY] == 1 and str(Step.CREATE_KEY) == "create-key"
    event = RotationEvent(EventKind.STEP_DONE, "done", step=2)
    assert orjson.loads(orjson.dumps(event.to_dict()))["kind"] == "step-done"
    assert JsonText().process_bind_param({Step.DRAIN: 1}, None) == '{"drain":1}'  # type: ignore[arg-type]
    assert f"{KeyState.EXPIRED}" == "expired"
