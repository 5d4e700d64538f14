"""Salesforce Contacts and Leads as rows of `leads` (seed 003's mapping)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.phones import e164


@dataclass(frozen=True)
class SyncedObject:
    source: str  # leads.source
    list_name: str  # the lead list its leads join
    fields: str
    where: str  # conditions besides the watermark


OBJECTS = {
    "Contact": SyncedObject(
        "salesforce_contact",
        "Salesforce Contacts",
        "Id, FirstName, LastName, Email, Phone, MobilePhone, Account.Name, "
        "DoNotCall, SystemModstamp",
        "",
    ),
    "Lead": SyncedObject(
        "salesforce_lead",
        "Salesforce Leads",
        "Id, FirstName, LastName, Email, Phone, MobilePhone, Company, DoNotCall, SystemModstamp",
        "IsConverted = false AND ",
    ),
}


def soql(sobject: str, since: str) -> str:
    """The incremental query from a watermark stamp: SOQL literals have whole seconds, so it
    asks from the start of that second and the caller skips what it already has."""
    moment = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%f%z")
    literal = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = OBJECTS[sobject]
    # SOQL, not SQL: every part is a constant above or a formatted datetime.
    where = f"{spec.where}SystemModstamp >= {literal}"
    return f"SELECT {spec.fields} FROM {sobject} WHERE {where} ORDER BY SystemModstamp, Id"  # noqa: S608


REQUIRED = {"Contact": ("Id", "LastName"), "Lead": ("Id", "LastName", "Company")}


def to_lead(sobject: str, record: dict[str, Any]) -> dict[str, Any] | str:
    """The lead row for a record, or why it is skipped (a missing required field)."""
    for name in REQUIRED[sobject]:
        if not record.get(name):
            return f"missing {name}"
    account = record.get("Account") or {}
    email = record.get("Email")
    return {
        "source": OBJECTS[sobject].source,
        "source_id": record["Id"],
        "first_name": record.get("FirstName"),
        "last_name": record["LastName"],
        "email": email.strip().lower() if email else None,
        "phone": e164(record.get("Phone") or record.get("MobilePhone")),
        "company": account.get("Name") if sobject == "Contact" else record.get("Company"),
        "do_not_call": bool(record.get("DoNotCall")),
    }
