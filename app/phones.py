"""Phone numbers in E.164, shared by every place that stores a lead's number."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"


def e164(phone: str | None) -> str | None:
    """The number in E.164 where it can be read as one (US numbers may omit +1); else as given."""
    if not phone or not phone.strip():
        return None
    try:
        number = phonenumbers.parse(phone, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return phone.strip()
    if not phonenumbers.is_possible_number(number):
        return phone.strip()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
