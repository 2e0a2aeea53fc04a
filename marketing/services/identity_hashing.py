"""Switching HASH_IDENTIFIERS_ON_UPLOAD on for a database that already holds plain
identifiers: they are replaced by the platforms' digests, as an upload would have stored them,
and the stored customer uploads lose their identifier columns."""

from collections.abc import Callable

from django.db import transaction
from django.db.models import Q

from marketing.exporters.hashing import HASHED_FIELDS, identity_hasher
from marketing.models import CustomerIdentity, Upload
from marketing.services.ingest import upload_remove_identifiers

DEFAULT_BATCH_SIZE = 2000


def identities_hash_stored(
    *, batch_size: int = DEFAULT_BATCH_SIZE, on_batch: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Hash every identity that still has a plain identifier, in batches of one transaction
    each (a rerun takes up what is left), then strip the stored customer uploads. Returns
    the number of identities and uploads changed."""
    digests = identity_hasher()
    plain = Q()
    for name in HASHED_FIELDS:
        plain |= ~Q(**{name: ""})
    identities = last = 0
    while True:
        with transaction.atomic():
            batch = list(
                CustomerIdentity.objects.filter(plain, pk__gt=last).order_by("pk")[:batch_size]
            )
            if not batch:
                break
            for identity in batch:
                stated = tuple(getattr(identity, name) for name in CustomerIdentity.PII_FIELDS)
                identity.digests = {**identity.digests, **digests(stated)}
                for name in HASHED_FIELDS:
                    setattr(identity, name, "")
            CustomerIdentity.objects.bulk_update(batch, [*HASHED_FIELDS, "digests"])
        identities += len(batch)
        last = batch[-1].pk
        if on_batch is not None:
            on_batch(len(batch))
    uploads = 0
    stored = Upload.objects.filter(kind=Upload.Kind.CUSTOMERS).exclude(file="")
    for upload in stored.order_by("pk"):
        if not upload.summary.get("identifiers_removed"):
            upload_remove_identifiers(upload=upload)
            uploads += 1
    return {"identities": identities, "uploads": uploads}
