"""A person's decision on a master (approval or rejection) as an event.

Decisions are appended, never edited: changing one's mind is a new decision, and the latest
decision on a master is its current status."""

from __future__ import annotations

from typing import Literal, get_args

from tasks.records.keys import stable_uuid
from tasks.records.types import APPROVAL, REJECTION, AgentInfo, StepRecord, utc_now

Decision = Literal["approved", "rejected"]


def person_agent(name: str) -> AgentInfo:
    name = " ".join(name.split())
    if not name:
        raise ValueError("a decision needs the name of the person who takes it (--by NAME)")
    return AgentInfo(kind="person", name=name)


def decision_step(decision: str, *, master_uuid: str, master_sha256: str, by: str, comment: str,
                  software: AgentInfo, when: str | None = None) -> StepRecord:
    if decision not in get_args(Decision):  # a reviewer's form or command line: any text until here
        raise ValueError(f"decision {decision!r}: expected approved or rejected")
    comment = comment.strip()
    if decision == "rejected" and not comment:
        raise ValueError("a rejection needs a comment saying why (--comment TEXT)")
    person = person_agent(by)
    when = when or utc_now()
    return StepRecord(
        event_uuid=stable_uuid(decision, master_uuid, person.name, when, comment),
        type=APPROVAL if decision == "approved" else REJECTION, step="approve" if decision == "approved" else "reject",
        when=when, outcome="success", detail=comment or f"{decision} by {person.name}",
        agents=[person, software],
        parameters={"decision": decision, "by": person.name, "comment": comment, "master_sha256": master_sha256},
    )
