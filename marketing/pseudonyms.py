import hashlib
import hmac
from functools import lru_cache

from django.conf import settings
from django.db.models import Q


def pseudonym_for(external_id: str, *, key: str | None = None) -> str:
    """Keyed HMAC-SHA256 of a customer's external id (hex).

    Plain hashes of identifiers can be reversed by dictionary; the key lives outside the
    database (PSEUDONYM_KEY), so a leaked table cannot be linked back on its own.
    """
    secret = (key if key is not None else settings.PSEUDONYM_KEY).encode()
    return hmac.new(secret, external_id.encode(), hashlib.sha256).hexdigest()


def pseudonymiser(*, key: str | None = None):
    """A fast pseudonym function for bulk imports (the HMAC key is prepared once)."""
    base = hmac.new(
        (key if key is not None else settings.PSEUDONYM_KEY).encode(), digestmod="sha256"
    )

    def make(external_id: str) -> str:
        h = base.copy()
        h.update(external_id.encode())
        return h.hexdigest()

    return make


# A slow derivation: the fingerprint is stored in the database, and a guessable key must not
# be found from it by trying candidates quickly.
_FINGERPRINT_SALT = b"campaign-studio pseudonym key fingerprint"
_FINGERPRINT_ROUNDS = 200_000


@lru_cache(maxsize=8)
def key_fingerprint(key: str) -> str:
    """A short, non-secret name for a pseudonym key (16 hex), to tell keys apart in the
    database and in messages without storing or showing the key itself."""
    return hashlib.pbkdf2_hmac(
        "sha256", key.encode(), _FINGERPRINT_SALT, _FINGERPRINT_ROUNDS, dklen=8
    ).hex()


def erasure_token(pseudonym: str, *, key: str | None = None) -> str:
    """What an erasure keeps of a person in place of their pseudonym (hex HMAC-SHA256 under
    SUPPRESSION_KEY).

    The pseudonym itself can be recomputed from a guessed external id by whoever holds
    PSEUDONYM_KEY; the token needs the second key as well, so the rows that must outlive the
    person (audit events, frozen audience members, export exclusions, model registries) keep
    telling "the same erased person" apart without saying who.
    """
    secret = (key if key is not None else settings.SUPPRESSION_KEY).encode()
    return hmac.new(secret, pseudonym.encode(), hashlib.sha256).hexdigest()


_HEX_DIGITS = frozenset("0123456789abcdef")


def pseudonym_prefix_q(term: str, *, field: str = "pseudonym") -> Q:
    """Rows whose pseudonym starts with ``term`` (any case), as a range on the pseudonym's
    unique index. Pseudonyms are lowercase hex of one length, which every collation orders
    as their characters do, so "ab1" <= p < "ab2" holds exactly for the pseudonyms starting
    "ab1"; no second index (an insert into it for every imported customer) is needed. A term
    that is not hex matches nothing."""
    prefix = term.strip().lower()
    if not prefix or not set(prefix) <= _HEX_DIGITS:
        return Q(pk__in=[])
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": after})
