"""Abstract bases for the rows a person asks for (runs, plans, audiences, exports)."""

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from marketing.models.jobs import Job


def user_link(*, blank: bool = False) -> models.ForeignKey:
    """The user who did something to a row; the row keeps its history when the user goes."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=blank,
        on_delete=models.SET_NULL,
        related_name="+",
    )


def optional_link(to: str, *, related_name: str, on_delete=models.SET_NULL) -> models.ForeignKey:
    """A row the record may point to or not; by default the record stays, unlinked, when that
    row goes."""
    return models.ForeignKey(
        to, null=True, blank=True, on_delete=on_delete, related_name=related_name
    )


def erasable_customer_link(*, related_name: str) -> models.ForeignKey:
    """A customer a row records; an erasure empties the link and the row keeps the pseudonym
    it stores beside it."""
    return optional_link("marketing.Customer", related_name=related_name)


class CreatedRecord(models.Model):
    """Who asked for the row and when; lists show the newest first."""

    created_by = user_link()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class JobRecord(CreatedRecord):
    """A row that a Job fills in: the job carries the status, progress, times and error.

    Each subclass declares its own ``job`` one-to-one field, because the reverse name differs
    (``job.training_run``, ``job.export``, ...).
    """

    job: "Job"

    class Meta(CreatedRecord.Meta):
        abstract = True

    @property
    def status(self) -> str:
        return self.job.status


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    """The field ``name`` of ``model`` that has a column (not a reverse relation)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{model.__name__}.{name} has no column")
    return field


def db_column(model: type[models.Model], name: str) -> str:
    """The database column of the field ``name`` of ``model``."""
    return str(concrete_field(model, name).column)
