"""A Salesforce integration carried over from the old system: it has only `last_sync_at`, and
perhaps its org's own OAuth client in the database (seed 003: "falls back to database
credentials")."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import crypto, db
from app.fakes.salesforce import FakeSalesforce, parse_stamp
from app.models import Integration, Lead
from app.salesforce import service
from tests.conftest import FAKE_SALESFORCE_PORT
from tests.integration.test_cli import callsync
from tests.salesforce import connect, contacts


def test_an_integration_with_only_last_sync_at_goes_on_from_there(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce)
    before = contacts(fake_salesforce, 3)
    last_sync_at = parse_stamp(before[-1]["SystemModstamp"]) + timedelta(milliseconds=1)
    with db.session_scope() as own:
        own.execute(
            update(Integration)
            .where(Integration.id == integration)
            .values(last_sync_at=last_sync_at, sync_state={})
        )
    after = contacts(fake_salesforce, 2, FirstName="New")
    result = service.sync_integration(integration)
    assert (result["status"], result["records_processed"]) == ("success", 2)
    synced = set(session.scalars(select(Lead.source_id)))
    assert synced == {record["Id"] for record in after}


def test_the_integrations_own_oauth_client_refreshes_its_token(session: Session) -> None:
    org = FakeSalesforce("3MVGorg-own-app", "org-own-secret", "5Aep-org-refresh")
    with org.serve(port=FAKE_SALESFORCE_PORT):
        integration = connect(session, org)
        contacts(org, 2)
        org.expire_all_tokens()
        # The environment's client (SALESFORCE_CLIENT_ID) is not this org's connected app.
        refused = service.sync_integration(integration)
        assert refused["status"] == "failed"
        assert "invalid_client_id" in refused["error_message"]
        set_client = callsync(
            "salesforce",
            "set-client",
            "--integration",
            str(integration),
            "--client-id",
            "3MVGorg-own-app",
            "--client-secret",
            "org-own-secret",
        )
        assert set_client.returncode == 0, set_client.stderr
        assert "org-own-secret" not in set_client.stdout + set_client.stderr
        row = session.get_one(Integration, integration)
        assert b"org-own-secret" not in (row.oauth_client_secret_encrypted or b"")
        assert crypto.decrypt(session, row.oauth_client_secret_encrypted) == "org-own-secret"
        result = service.sync_integration(integration)
        assert (result["status"], result["records_processed"], org.refreshes) == ("success", 2, 1)
