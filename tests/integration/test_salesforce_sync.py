"""sync-salesforce-leads against the fake_salesforce Salesforce over HTTP: mapping, watermarks, token
refresh and rotation, invalid_grant, the org's limits, the per-run cap, one run at a time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app import crypto, db
from app.fakes.limits import DailyAllocation
from app.fakes.salesforce import FakeSalesforce
from app.models import Integration, Lead, LeadList, LeadListMember, SyncLog
from app.salesforce import queries, service
from tests.integration.test_cli import callsync
from tests.salesforce import URL, connect, contacts


def sync(integration_id: uuid.UUID) -> dict[str, Any]:
    return service.sync_integration(integration_id)


def leads(session: Session) -> dict[str, Lead]:
    session.expire_all()
    return {lead.source_id: lead for lead in session.scalars(select(Lead))}


def test_contacts_and_leads_become_leads_in_their_lists(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce)
    jane = fake_salesforce.add(
        "Contact",
        FirstName="Jane",
        LastName="Doe",
        Email="Jane.Doe@Example.COM",
        Phone="(202) 555-0143",
        AccountName="Acme",
        DoNotCall=True,
    )
    fake_salesforce.add("Contact", FirstName="No", Email="nolastname@example.com")
    lead = fake_salesforce.add(
        "Lead",
        LastName="Roe",
        Company="Roe & Co",
        MobilePhone="+44 20 7946 0958",
        IsConverted=False,
    )
    fake_salesforce.add("Lead", LastName="Converted", Company="Old", IsConverted=True)
    fake_salesforce.add("Lead", LastName="Nocompany", IsConverted=False)
    result = sync(integration)
    assert {
        k: result[k]
        for k in (
            "status",
            "records_processed",
            "records_created",
            "records_updated",
            "records_skipped",
            "skip_reasons",
        )
    } == {
        "status": "success",
        "records_processed": 4,
        "records_created": 2,
        "records_updated": 0,
        "records_skipped": 2,
        "skip_reasons": {"missing LastName": 1, "missing Company": 1},
    }
    rows = leads(session)
    doe = rows[jane["Id"]]
    assert (doe.source, doe.email, doe.phone, doe.company, doe.do_not_call) == (
        "salesforce_contact",
        "jane.doe@example.com",
        "+12025550143",
        "Acme",
        True,
    )
    roe = rows[lead["Id"]]
    assert (roe.source, roe.phone, roe.company) == ("salesforce_lead", "+442079460958", "Roe & Co")
    memberships = session.execute(
        select(LeadList.name, LeadListMember.lead_id).join(LeadListMember)
    ).all()
    assert sorted(memberships) == sorted(
        [("Salesforce Contacts", doe.id), ("Salesforce Leads", roe.id)]
    )
    log = session.scalars(select(SyncLog)).one()
    assert (log.status, log.records_processed, log.error_message) == ("success", 4, None)


def test_the_next_run_takes_only_what_changed(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce)
    first = contacts(fake_salesforce, 3)
    assert sync(integration)["records_created"] == 3
    assert sync(integration)["records_processed"] == 0  # the boundary record is not redone
    fake_salesforce.add("Contact", Id=first[1]["Id"], LastName="Renamed")
    result = sync(integration)
    assert (result["records_processed"], result["records_updated"]) == (1, 1)
    assert leads(session)[first[1]["Id"]].last_name == "Renamed"


def test_a_record_modified_during_a_run_is_picked_up_by_the_next(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce)
    records = contacts(fake_salesforce, 450)
    fake_salesforce.batch_limit = 200

    def modify(offset: int) -> None:
        if offset == 200:  # while the second page is served
            fake_salesforce.add("Contact", Id=records[10]["Id"], LastName="Changed meanwhile")

    fake_salesforce.on_page = modify
    assert sync(integration)["records_processed"] == 450
    assert leads(session)[records[10]["Id"]].last_name == "Contact 10"
    fake_salesforce.on_page = None
    assert sync(integration)["records_updated"] == 1
    assert leads(session)[records[10]["Id"]].last_name == "Changed meanwhile"


def test_a_token_that_expires_mid_pagination_is_refreshed_once(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.expire_tokens_after = 1
    fake_salesforce.rotate_refresh_tokens = True
    integration = connect(session, fake_salesforce)
    contacts(fake_salesforce, 500)
    fake_salesforce.batch_limit = 200
    fake_salesforce.expire_tokens_after = 3  # the refreshed token serves the rest of the run
    result = sync(integration)
    assert (result["status"], result["records_processed"]) == ("success", 500)
    assert fake_salesforce.refreshes == 1
    row = session.get_one(Integration, integration)
    session.refresh(row)
    assert (
        crypto.decrypt(session, row.refresh_token_encrypted) == fake_salesforce.refresh_token
    )  # rotated
    assert row.refresh_token_encrypted is not None
    assert fake_salesforce.refresh_token.encode() not in row.refresh_token_encrypted


def test_invalid_grant_needs_reauthorisation_and_is_not_retried(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce, refresh="revoked")
    contacts(fake_salesforce, 1)
    fake_salesforce.expire_all_tokens()
    result = sync(integration)
    assert result["status"] == "failed"
    assert "invalid_grant" in result["error_message"]
    row = session.get_one(Integration, integration)
    session.refresh(row)
    assert (row.status, row.last_sync_at, row.sync_started_at) == ("needs_reauth", None, None)
    with db.session_scope() as own:
        assert queries.get_enabled_integrations(own) == []  # no retry storm
    assert sync(integration)["skipped"] == "running or not enabled"
    assert session.scalar(select(func.count()).select_from(SyncLog)) == 1


@pytest.mark.parametrize("fault", ["403", "429", "503"])
def test_a_run_stopped_by_the_orgs_limits_resumes_without_gaps_or_duplicates(
    session: Session, fake_salesforce: FakeSalesforce, fault: str
) -> None:
    integration = connect(session, fake_salesforce)
    contacts(fake_salesforce, 600)
    fake_salesforce.batch_limit = 200

    def limit(offset: int) -> None:
        if offset == 200:
            fake_salesforce.inject(fault, times=4)  # every try at the third page, retries included

    fake_salesforce.on_page = limit
    first = sync(integration)
    assert (first["status"], first["records_processed"]) == ("partial", 400)
    assert "stopped by the org's limits" in first["error_message"]
    fake_salesforce.on_page = None
    second = sync(integration)
    assert (second["status"], second["records_processed"]) == ("success", 200)
    assert len(leads(session)) == 600


def test_a_run_ends_early_leaving_the_reserve_of_the_orgs_daily_allocation(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    """SALESFORCE_API_RESERVE_PERCENT (10) of the allocation is left to the org's other users:
    the run stops once Sforce-Limit-Info says only that much is left, and the next day's run
    goes on from there."""
    integration = connect(session, fake_salesforce)
    contacts(fake_salesforce, 600)
    fake_salesforce.batch_limit = 200
    fake_salesforce.allocation = DailyAllocation(limit=100, used=88)
    first = sync(integration)
    assert (first["status"], first["records_processed"]) == ("partial", 400)
    assert "down to its 10% reserve (api-usage=90/100)" in first["error_message"]
    assert fake_salesforce.used == 90  # no request was made into the reserve
    fake_salesforce.allocation = DailyAllocation(limit=100)  # a new day
    second = sync(integration)
    assert (second["status"], second["records_processed"]) == ("success", 200)
    assert len(leads(session)) == 600


def test_a_run_takes_at_most_max_records_per_sync(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce)
    contacts(fake_salesforce, 2300)
    assert sync(integration)["records_processed"] == 2000
    assert sync(integration)["records_processed"] == 300
    assert sync(integration)["records_processed"] == 0
    assert len(leads(session)) == 2300


def test_one_run_at_a_time(session: Session, fake_salesforce: FakeSalesforce) -> None:
    integration = connect(session, fake_salesforce)
    with db.session_scope() as own:
        assert queries.start_run(own, integration, lease=timedelta(minutes=5)) is not None
    assert sync(integration)["skipped"] == "running or not enabled"
    with db.session_scope() as own:  # a run that died: its lease runs out
        assert queries.start_run(own, integration, lease=timedelta(seconds=0)) is not None


def test_an_integration_connected_from_the_cli_gets_its_token_by_refresh(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    contacts(fake_salesforce, 2)
    result = callsync(
        "salesforce",
        "connect",
        "--business",
        "Acme",
        "--instance-url",
        URL,
        "--refresh-token",
        fake_salesforce.refresh_token,
    )
    assert result.returncode == 0, result.stderr
    assert fake_salesforce.refresh_token not in result.stdout  # only the id is printed
    integration = uuid.UUID(result.stdout.strip())
    assert sync(integration)["records_created"] == 2
    assert fake_salesforce.refreshes == 1


# Limits a deployment may put on leads (Salesforce's own Email length, a name that is not
# blank), for the database to refuse what breaks them.
STRICT_LEADS = """ALTER TABLE leads ALTER COLUMN email TYPE varchar(80),
    ADD CONSTRAINT leads_last_name_not_blank CHECK (btrim(last_name) <> '')"""
LENIENT_LEADS = """ALTER TABLE leads ALTER COLUMN email TYPE text,
    DROP CONSTRAINT leads_last_name_not_blank"""


@pytest.fixture
def strict_leads(session: Session) -> Iterator[None]:
    """STRICT_LEADS for one test, taken off again afterwards."""
    with db.session_scope() as own:
        own.execute(text(STRICT_LEADS))
    yield
    session.rollback()  # the test's reads would hold the ALTER back
    with db.session_scope() as own:
        own.execute(text("SET LOCAL lock_timeout = '10s'"))
        own.execute(text(LENIENT_LEADS))


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if " refused " in r.getMessage()]


@pytest.mark.usefixtures("strict_leads")
def test_records_the_database_refuses_are_counted_as_failed_and_the_batch_goes_on(
    session: Session, fake_salesforce: FakeSalesforce, caplog: pytest.LogCaptureFixture
) -> None:
    integration = connect(session, fake_salesforce)
    before = contacts(fake_salesforce, 3)
    long_email = fake_salesforce.add("Contact", LastName="Long", Email=f"{'x' * 80}@example.com")
    blank = fake_salesforce.add("Contact", LastName="   ")
    after = contacts(fake_salesforce, 2)
    with caplog.at_level(logging.INFO, logger="salesforce"):
        result = sync(integration)
    counts = ("records_processed", "records_created", "records_updated", "records_failed")
    assert result["status"] == "success"
    assert [result[k] for k in counts] == [7, 5, 0, 2]
    assert set(leads(session)) == {record["Id"] for record in before + after}
    members = session.scalar(select(func.count()).select_from(LeadListMember))
    assert members == 5
    assert session.scalars(select(SyncLog.records_failed)).one() == 2
    assert refusals(caplog) == [
        f"[sync] Contact batch refused integration_id={integration}: "
        "value too long for type character varying(80); upserting it one by one",
        f"[sync] Contact Id={long_email['Id']} refused integration_id={integration}: "
        "value too long for type character varying(80)",
        f"[sync] Contact Id={blank['Id']} refused integration_id={integration}: "
        'new row for relation "leads" violates check constraint "leads_last_name_not_blank"',
    ]
    assert any("failed=2" in r.getMessage() for r in caplog.records)
    assert sync(integration)["records_processed"] == 0  # the watermark moved past them


@pytest.mark.usefixtures("strict_leads")
def test_only_the_batch_with_a_refused_record_is_upserted_one_by_one(
    session: Session, fake_salesforce: FakeSalesforce, caplog: pytest.LogCaptureFixture
) -> None:
    integration = connect(session, fake_salesforce)
    contacts(fake_salesforce, 250)
    fake_salesforce.add("Contact", LastName=" ")  # in the second batch of 200
    contacts(fake_salesforce, 250)
    fake_salesforce.batch_limit = 200
    with caplog.at_level(logging.INFO, logger="salesforce"):
        result = sync(integration)
    assert (result["records_processed"], result["records_created"]) == (501, 500)
    assert result["records_failed"] == 1
    assert len(leads(session)) == 500
    assert [line for line in refusals(caplog) if "one by one" in line] == [
        f"[sync] Contact batch refused integration_id={integration}: new row for relation "
        '"leads" violates check constraint "leads_last_name_not_blank"; upserting it one by one'
    ]
