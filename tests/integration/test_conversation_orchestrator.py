"""conversation-orchestrator against the fake ElevenLabs: turns stored once, outcomes from the
seed's phrases, the lookback and batch limit, and an outage that changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db
from app.campaigns import conversations, service
from app.fakes.elevenlabs import ENDED, SCRIPT, FakeElevenLabs
from app.models import CampaignLead, CampaignLeadStatus, Conversation, ConversationEvent
from tests.campaigns import enroll, make_campaign
from tests.integration.test_campaign_orchestrator import NOON_ISH


def placed_conversation(session: Session) -> Conversation:
    """A campaign call placed through the fake: its conversation row, status initiated."""
    campaign = make_campaign(session)
    enroll(session, campaign)
    assert service.run_campaign(campaign.id, NOON_ISH).placed == 1
    return session.scalars(select(Conversation)).one()


def events(session: Session, conversation: Conversation) -> list[tuple[int, str, str | None]]:
    session.expire_all()
    rows = session.scalars(
        select(ConversationEvent)
        .where(ConversationEvent.conversation_id == conversation.id)
        .order_by(ConversationEvent.event_index)
    )
    return [(e.event_index, e.role, e.message) for e in rows]


def test_turns_arrive_as_the_call_goes_on_and_are_stored_once(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    conversation = placed_conversation(session)
    added = [conversations.sync_conversation(conversation.id).events_added for _ in range(5)]
    assert added == [0, 2, 2, 0, 0]  # initiated, in-progress, processing, done, done
    assert events(session, conversation) == [
        (index, role, message) for index, (role, message) in enumerate(SCRIPT)
    ]
    session.refresh(conversation)
    assert (conversation.status, conversation.outcome, conversation.sentiment_score) == (
        "done",
        "pledged",
        0.8,
    )
    assert conversation.key_points == [  # the caller's questions and commitments
        "Oh hi. What is it about?",
        "Yes, count me in, I will pledge fifty dollars.",
    ]
    lead = session.scalars(select(CampaignLead)).one()
    assert lead.status == CampaignLeadStatus.completed  # never called again


def test_the_history_fills_the_conversations_metadata(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    conversation = placed_conversation(session)
    conversation.metadata_ = {"source": "campaign"}  # what others wrote stays
    session.commit()
    fake_elevenlabs.set_analysis(
        conversation.conversation_id,
        call_successful="failure",
        data_collection={"pledge_amount": 25, "email": None},
        evaluation={"polite": "success"},
    )
    conversations.sync_conversation(conversation.id)  # initiated
    conversations.sync_conversation(conversation.id)  # in-progress
    session.refresh(conversation)
    started = conversation.metadata_["start_time_unix_secs"]
    assert conversation.metadata_ == {
        "source": "campaign",
        "status": "in-progress",
        "start_time_unix_secs": started,
        "accepted_time_unix_secs": started + 2,
        "call_duration_secs": 10,
        "cost": 100,
        "main_language": "en",
    }
    conversations.sync_conversation(conversation.id)  # processing: ended, not analysed yet
    session.refresh(conversation)
    assert conversation.metadata_["termination_reason"] == ENDED
    assert "call_successful" not in conversation.metadata_
    conversations.sync_conversation(conversation.id)  # done
    session.refresh(conversation)
    assert conversation.metadata_ == {
        "source": "campaign",
        "status": "done",
        "start_time_unix_secs": started,
        "accepted_time_unix_secs": started + 2,
        "call_duration_secs": 20,
        "cost": 200,
        "main_language": "en",
        "termination_reason": ENDED,
        "call_successful": "failure",
        "call_summary_title": "Winter appeal call",
        "data_collection": {"pledge_amount": 25, "email": None},
        "evaluation_criteria": {"polite": "success"},
    }
    assert conversation.summary is not None
    assert conversation.summary.endswith("I will pledge fifty dollars.")


def test_a_missing_call_sid_is_taken_from_the_history(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    conversation = placed_conversation(session)
    call_sid, conversation.call_sid = conversation.call_sid, None
    session.commit()
    conversations.sync_conversation(conversation.id)
    session.refresh(conversation)
    assert conversation.call_sid == call_sid


@pytest.mark.parametrize(
    ("caller", "outcome", "sentiment"),
    [
        ("NOT INTERESTED, sorry.", "not_interested", -0.6),
        ("Sure, I'll Donate today.", "donated", 1.0),
        ("I don't want to donate.", "not_interested", -0.6),
        ("I'd like to donate.", "donated", 1.0),
        ("Who is this?", None, 0.0),
    ],
)
def test_the_outcome_comes_from_the_callers_words(
    session: Session,
    fake_elevenlabs: FakeElevenLabs,
    caller: str,
    outcome: str | None,
    sentiment: float,
) -> None:
    conversation = placed_conversation(session)
    script = (("agent", "I'll pledge it for you, shall I?"), ("user", caller))
    fake_elevenlabs.set_script(conversation.conversation_id, script)
    for _ in range(4):
        conversations.sync_conversation(conversation.id)
    session.refresh(conversation)
    assert (conversation.outcome, conversation.sentiment_score) == (outcome, sentiment)


def test_long_transcripts_are_inserted_in_batches(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    conversation = placed_conversation(session)
    script = tuple(("user" if n % 2 else "agent", f"turn {n}") for n in range(123))
    fake_elevenlabs.set_script(conversation.conversation_id, script)
    totals = [conversations.sync_conversation(conversation.id).events_added for _ in range(4)]
    assert sum(total or 0 for total in totals) == 123
    assert [index for index, _, _ in events(session, conversation)] == list(range(123))


def test_an_unavailable_api_changes_nothing(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    conversation = placed_conversation(session)
    fake_elevenlabs.available = False
    result = conversations.sync_conversation(conversation.id)
    assert result.status == "unavailable"
    assert "HTTP 503" in str(result.error)
    assert list(result.as_dict()) == ["id", "status", "error"]  # the task's result
    session.refresh(conversation)
    assert (conversation.status, conversation.last_synced_at) == ("initiated", None)
    assert events(session, conversation) == []
    fake_elevenlabs.available = True
    assert conversations.sync_conversation(conversation.id).as_dict() == {
        "id": str(conversation.id),
        "status": "initiated",
        "events_added": 0,
    }


def test_the_lookback_and_the_batch_limit(session: Session) -> None:
    campaign = make_campaign(session)
    now = datetime.now(UTC)

    def add(status: str, updated: datetime, synced: datetime | None = None) -> uuid.UUID:
        row = Conversation(
            conversation_id=f"conv_{uuid.uuid4().hex}",
            business_id=campaign.business_id,
            status=status,
            updated_at=updated,
            last_synced_at=synced,
        )
        session.add(row)
        session.flush()
        return row.id

    never = add("initiated", now)
    recent = [
        add("in-progress", now - timedelta(hours=1), now - timedelta(minutes=n)) for n in range(12)
    ]
    add("done", now)
    add("in-progress", now - timedelta(hours=49))
    session.commit()
    with db.session_scope() as own:
        chosen = conversations.conversations_to_sync(own, now)
    assert chosen == [never, *recent[::-1][:9]]
    assert session.scalar(select(func.count()).select_from(Conversation)) == 15
