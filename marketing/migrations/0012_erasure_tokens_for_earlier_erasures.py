"""Erasures made before erasure tokens existed kept the erased person's pseudonym in audit
events, frozen audience members and export exclusions; whoever holds PSEUDONYM_KEY could
recompute it from a guessed external id. Those pseudonyms become erasure tokens (model
registries on disk are not touched here: ``training_runs_flag_erasure`` does that for the
erasures from now on)."""

import json

from django.db import migrations, models
from django.db.models.functions import Cast

from marketing.pseudonyms import erasure_token


def tokenise_earlier_erasures(apps, schema_editor):
    AuditEvent = apps.get_model("marketing", "AuditEvent")
    AudienceMember = apps.get_model("marketing", "AudienceMember")
    ExportExclusion = apps.get_model("marketing", "ExportExclusion")
    Customer = apps.get_model("marketing", "Customer")
    refs = set(
        AuditEvent.objects.filter(action="erasure", target_type="customer")
        .exclude(target_ref="").values_list("target_ref", flat=True)
    )
    # A ref that is still a customer's pseudonym is not an erased person's.
    refs -= set(Customer.objects.filter(pseudonym__in=refs).values_list("pseudonym", flat=True))
    for pseudonym in refs:
        token = erasure_token(pseudonym)
        AudienceMember.objects.filter(pseudonym=pseudonym).update(pseudonym=token)
        ExportExclusion.objects.filter(pseudonym=pseudonym).update(pseudonym=token)
        AuditEvent.objects.filter(target_ref=pseudonym).update(target_ref=token)
        mentioned = AuditEvent.objects.annotate(
            details_text=Cast("details", models.TextField())
        ).filter(details_text__contains=pseudonym)
        for event in mentioned:
            event.details = json.loads(json.dumps(event.details).replace(pseudonym, token))
            event.save(update_fields=["details"])


class Migration(migrations.Migration):
    dependencies = [("marketing", "0011_data_access_audit")]

    operations = [migrations.RunPython(tokenise_earlier_erasures, migrations.RunPython.noop)]
