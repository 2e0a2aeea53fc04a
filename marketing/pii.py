"""Masking personal identifiers for everyone without the ``view_pii`` permission.

Pages, the API and the admin console all show identities through ``masked_identity`` so that
the rule is the same everywhere. Country stays visible: it is coarse and segments may use it.
"""

from typing import Any

from marketing.exporters.hashing import HASHED
from marketing.models import Customer, CustomerIdentity
from marketing.roles import can_view_pii

HIDDEN = "***"


def mask_email(email: str) -> str:
    """``jane.doe@example.com`` -> ``j***@e***.com``."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    name, dot, tld = domain.rpartition(".")
    masked_domain = f"{name[:1]}{HIDDEN}{dot}{tld}" if name else f"{domain[:1]}{HIDDEN}"
    return f"{local[:1]}{HIDDEN}@{masked_domain}"


def mask_phone(phone: str) -> str:
    """``+44 20 7946 0958`` -> ``***58``; short numbers keep no digits at all."""
    digits = "".join(c for c in phone or "" if c.isdigit())
    if not digits:
        return ""
    return f"{HIDDEN}{digits[-2:]}" if len(digits) >= 6 else HIDDEN


def mask_name(name: str) -> str:
    """``Jane`` -> ``J***``."""
    return f"{name.strip()[:1]}{HIDDEN}" if name and name.strip() else ""


def mask_postal_code(code: str) -> str:
    return f"{code.strip()[:2]}{HIDDEN}" if code and code.strip() else ""


_MASKS = {
    "email": mask_email,
    "phone": mask_phone,
    "first_name": mask_name,
    "last_name": mask_name,
    "postal_code": mask_postal_code,
}
# The identity fields that are masked (country is not).
MASKED_FIELDS = frozenset(_MASKS)


def mask_value(field: str, value: str) -> str:
    """``value`` masked as the identity field ``field``; other fields pass unchanged."""
    mask = _MASKS.get(field)
    return mask(value) if mask and value else value


def identity_of(customer: Customer) -> CustomerIdentity | None:
    try:
        return customer.identity
    except CustomerIdentity.DoesNotExist:
        return None


def masked_values(identity: CustomerIdentity | None) -> dict[str, str]:
    """The identity's fields, always masked (country stays as it is); "hashed" for those
    kept only as digests."""
    values = {}
    for name in CustomerIdentity.PII_FIELDS:
        value = getattr(identity, name, "") if identity is not None else ""
        mask = _MASKS.get(name)
        values[name] = mask(value) if mask else value
    return {**values, **_hashed(identity)}


def identity_value(identity: CustomerIdentity | None, name: str) -> str:
    """The identity field as stored, "hashed" when it is kept only as digests, "" for none
    (for those who may see identifiers)."""
    if identity is None:
        return ""
    return getattr(identity, name) or _hashed(identity).get(name, "")


def _hashed(identity: CustomerIdentity | None) -> dict[str, str]:
    """``"hashed"`` for each field kept only as platform digests (HASH_IDENTIFIERS_ON_UPLOAD):
    there is no plain value, for anyone, to show."""
    if identity is None or not identity.digests:
        return {}
    return {
        name: HASHED
        for name in CustomerIdentity.PII_FIELDS
        if not getattr(identity, name) and identity.is_hashed(name)
    }


def masked_identity(identity: CustomerIdentity | None, user) -> dict[str, Any]:
    """The identity's fields as ``user`` may see them, plus ``"masked"``.

    Real values with the PII permission, masked otherwise; a missing identity gives blanks.
    """
    if not can_view_pii(user):
        return {"masked": True, **masked_values(identity)}
    return {
        "masked": False,
        **{name: identity_value(identity, name) for name in CustomerIdentity.PII_FIELDS},
    }
