"""sync-salesforce-leads against the fake Salesforce over HTTP: mapping, watermarks, token
refresh and rotation, invalid_grant, the org's limits, the per-run cap, one run at a time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import crypto, db
from app.fakes.salesforce import FakeSalesforce
from app.models import Business, Integration, Lead, LeadList, LeadListMember, SyncLog
from app.salesforce import queries, service
from tests.conftest import FAKE_SALESFORCE_PORT, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET
from tests.integration.test_cli import callsync

URL = f"http://127.0.0.1:{FAKE_SALESFORCE_PORT}"


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    org = FakeSalesforce(SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, "5Aep-refresh-1")
    with org.serve(port=FAKE_SALESFORCE_PORT):
        yield org


def connect(session: Session, fake: FakeSalesforce, *, refresh: str | None = None) -> uuid.UUID:
    business = Business(name="Acme Fundraising")
    session.add(business)
    session.flush()
    integration = Integration(
        business_id=business.id, provider="salesforce", config={"syncEnabled": True},
        instance_url=URL, access_token_encrypted=crypto.encrypt(session, fake.issue_token()),
        refresh_token_encrypted=crypto.encrypt(session, refresh or fake.refresh_token),
    )  # fmt: skip
    session.add(integration)
    session.commit()
    return integration.id


def sync(integration_id: uuid.UUID) -> dict[str, Any]:
    return service.sync_integration(integration_id)


def leads(session: Session) -> dict[str, Lead]:
    session.expire_all()
    return {lead.source_id: lead for lead in session.scalars(select(Lead))}


def contacts(fake: FakeSalesforce, count: int, **fields: Any) -> list[dict[str, Any]]:
    return [fake.add("Contact", LastName=f"Contact {n}", Phone=f"(202) 555-{n % 10000:04d}",
                     **fields) for n in range(count)]  # fmt: skip


def test_contacts_and_leads_become_leads_in_their_lists(
    session: Session, fake: FakeSalesforce
) -> None:
    integration = connect(session, fake)
    jane = fake.add("Contact", FirstName="Jane", LastName="Doe", Email="Jane.Doe@Example.COM",
                    Phone="(202) 555-0143", AccountName="Acme", DoNotCall=True)  # fmt: skip
    fake.add("Contact", FirstName="No", Email="nolastname@example.com")
    lead = fake.add("Lead", LastName="Roe", Company="Roe & Co", MobilePhone="+44 20 7946 0958",
                    IsConverted=False)  # fmt: skip
    fake.add("Lead", LastName="Converted", Company="Old", IsConverted=True)
    fake.add("Lead", LastName="Nocompany", IsConverted=False)
    result = sync(integration)
    assert {k: result[k] for k in ("status", "records_processed", "records_created",
            "records_updated", "records_skipped", "skip_reasons")} == {
        "status": "success", "records_processed": 4, "records_created": 2,
        "records_updated": 0, "records_skipped": 2,
        "skip_reasons": {"missing LastName": 1, "missing Company": 1},
    }  # fmt: skip
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


def test_the_next_run_takes_only_what_changed(session: Session, fake: FakeSalesforce) -> None:
    integration = connect(session, fake)
    first = contacts(fake, 3)
    assert sync(integration)["records_created"] == 3
    assert sync(integration)["records_processed"] == 0  # the boundary record is not redone
    fake.add("Contact", Id=first[1]["Id"], LastName="Renamed")
    result = sync(integration)
    assert (result["records_processed"], result["records_updated"]) == (1, 1)
    assert leads(session)[first[1]["Id"]].last_name == "Renamed"


def test_a_record_modified_during_a_run_is_picked_up_by_the_next(
    session: Session, fake: FakeSalesforce
) -> None:
    integration = connect(session, fake)
    records = contacts(fake, 450)
    fake.batch_limit = 200

    def modify(offset: int) -> None:
        if offset == 200:  # while the second page is served
            fake.add("Contact", Id=records[10]["Id"], LastName="Changed meanwhile")

    fake.on_page = modify
    assert sync(integration)["records_processed"] == 450
    assert leads(session)[records[10]["Id"]].last_name == "Contact 10"
    fake.on_page = None
    assert sync(integration)["records_updated"] == 1
    assert leads(session)[records[10]["Id"]].last_name == "Changed meanwhile"


def test_a_token_that_expires_mid_pagination_is_refreshed_once(
    session: Session, fake: FakeSalesforce
) -> None:
    fake.expire_tokens_after = 1
    fake.rotate_refresh_tokens = True
    integration = connect(session, fake)
    contacts(fake, 500)
    fake.batch_limit = 200
    fake.expire_tokens_after = 3  # the refreshed token serves the rest of the run
    result = sync(integration)
    assert (result["status"], result["records_processed"]) == ("success", 500)
    assert fake.refreshes == 1
    row = session.get_one(Integration, integration)
    session.refresh(row)
    assert crypto.decrypt(session, row.refresh_token_encrypted) == fake.refresh_token  # rotated
    assert row.refresh_token_encrypted is not None
    assert fake.refresh_token.encode() not in row.refresh_token_encrypted


def test_invalid_grant_needs_reauthorisation_and_is_not_retried(
    session: Session, fake: FakeSalesforce
) -> None:
    integration = connect(session, fake, refresh="revoked")
    contacts(fake, 1)
    fake.expire_all_tokens()
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
    session: Session, fake: FakeSalesforce, fault: str
) -> None:
    integration = connect(session, fake)
    contacts(fake, 600)
    fake.batch_limit = 200

    def limit(offset: int) -> None:
        if offset == 200:
            fake.inject(fault, times=4)  # every try at the third page, retries included

    fake.on_page = limit
    first = sync(integration)
    assert (first["status"], first["records_processed"]) == ("partial", 400)
    assert "stopped by the org's limits" in first["error_message"]
    fake.on_page = None
    second = sync(integration)
    assert (second["status"], second["records_processed"]) == ("success", 200)
    assert len(leads(session)) == 600


def test_a_run_takes_at_most_max_records_per_sync(session: Session, fake: FakeSalesforce) -> None:
    integration = connect(session, fake)
    contacts(fake, 2300)
    assert sync(integration)["records_processed"] == 2000
    assert sync(integration)["records_processed"] == 300
    assert sync(integration)["records_processed"] == 0
    assert len(leads(session)) == 2300


def test_one_run_at_a_time(session: Session, fake: FakeSalesforce) -> None:
    integration = connect(session, fake)
    with db.session_scope() as own:
        assert queries.start_run(own, integration, lease=timedelta(minutes=5)) is not None
    assert sync(integration)["skipped"] == "running or not enabled"
    with db.session_scope() as own:  # a run that died: its lease runs out
        assert queries.start_run(own, integration, lease=timedelta(seconds=0)) is not None


def test_an_integration_connected_from_the_cli_gets_its_token_by_refresh(
    session: Session, fake: FakeSalesforce
) -> None:
    contacts(fake, 2)
    result = callsync("salesforce", "connect", "--business", "Acme", "--instance-url", URL,
                      "--refresh-token", fake.refresh_token)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fake.refresh_token not in result.stdout  # only the id is printed
    integration = uuid.UUID(result.stdout.strip())
    assert sync(integration)["records_created"] == 2
    assert fake.refreshes == 1
