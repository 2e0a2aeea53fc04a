"""What erasing a customer will do, read before a data steward confirms it.

Every count is of the customer's own rows (indexed by customer or pseudonym), so the screen
reads the same whatever the size of the base. What can only be found by reading files (their
rows in stored uploads, the models whose customer lists hold them) is named, and counted by
the erasure itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from marketing.models import (
    AudienceMember,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    CustomerRecommendation,
    CustomerScore,
    ExplanationRun,
    Interaction,
    Suppression,
)
from marketing.selectors.audiences import exports_holding

StrOrPromise = str | Promise


@dataclass(frozen=True)
class PlannedStep:
    # The key of the erasure's result that counts the same thing.
    key: str
    label: StrOrPromise
    what_happens: StrOrPromise
    count: int | None  # None: counted when the erasure runs


# key (of the erasure's result) -> (label, what happens), in the user's language when shown.
STEPS: dict[str, tuple[StrOrPromise, StrOrPromise]] = {
    "identity": (
        _("Personal identifiers"),
        _("Email, phone, names, country and postal code: deleted."),
    ),
    "consent_records": (
        _("Consent history"),
        _("Every consent record and the consent in effect: deleted."),
    ),
    "interactions": (
        _("Responses"),
        _("Offers shown, clicks, conversions and their values: deleted."),
    ),
    "scores": (_("Scores"), _("Their scores from every scoring run: deleted.")),
    "explanations": (_("Explanations"), _("Explanations of their scores: deleted.")),
    "recommendations": (_("Recommendations"), _("Offers recommended to them: deleted.")),
    "suppressions": (_("Suppression list"), _("Their entry on the suppression list: deleted.")),
    "audience_memberships": (
        _("Frozen audiences"),
        _(
            "Their places in frozen audiences keep only an erasure token: the audience sizes "
            "stay true, nothing leads back to them."
        ),
    ),
    "export_files": (
        _("Export files"),
        _("Audience files exported with them in it: deleted (export the audience again)."),
    ),
    "upload_rows": (
        _("Uploaded files"),
        _("Their rows in stored uploads and error files: blanked (found when the erasure runs)."),
    ),
    "models_flagged": (
        _("Models"),
        _(
            "Every model trained on their data: flagged for retraining without them (found in "
            "the model registry when the erasure runs)."
        ),
    ),
}


def erasure_plan(customer: Customer) -> list[PlannedStep]:
    """What erasing ``customer`` will do, step by step, with the rows each step touches."""
    pseudonym = customer.pseudonym
    own = {"customer": customer}
    counts: dict[str, int | None] = {
        "identity": CustomerIdentity.objects.filter(**own).count(),
        "consent_records": ConsentRecord.objects.filter(**own).count(),
        "interactions": Interaction.objects.filter(**own).count(),
        "scores": CustomerScore.objects.filter(**own).count(),
        "explanations": ExplanationRun.objects.filter(**own).count(),
        "recommendations": CustomerRecommendation.objects.filter(**own).count(),
        "suppressions": Suppression.objects.filter(**own).count(),
        "audience_memberships": AudienceMember.objects.filter(pseudonym=pseudonym).count(),
        "export_files": exports_holding(pseudonym).exclude(file_path="").count(),
        "upload_rows": None,
        "models_flagged": None,
    }
    return [PlannedStep(key, *STEPS[key], counts[key]) for key in STEPS]


def erasure_outcome(result: dict) -> list[PlannedStep]:
    """An erasure job's result, step by step, in the words of the plan."""
    return [PlannedStep(key, *STEPS[key], result.get(key)) for key in STEPS]
