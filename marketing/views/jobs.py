import json

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import DetailView, ListView

from marketing.models import Job, Upload
from marketing.roles import MARKETER, has_role
from marketing.selectors.jobs import job_outlook
from marketing.stored_texts import translated
from marketing.views.mixins import RoleRequiredMixin


class JobListView(RoleRequiredMixin, ListView):
    template_name = "marketing/jobs/list.html"
    context_object_name = "jobs"
    paginate_by = 25

    def get_queryset(self):
        jobs = Job.objects.select_related("created_by")
        status = self.request.GET.get("status", "")
        if status in Job.Status.values:
            jobs = jobs.filter(status=status)
        return jobs

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        for job in ctx["jobs"]:
            job.duration_text = duration_text(job)
        status = self.request.GET.get("status", "")
        ctx["status"] = status
        ctx["statuses"] = Job.Status.choices
        ctx["query_prefix"] = f"status={status}&" if status else ""
        return ctx


class JobDetailView(RoleRequiredMixin, DetailView):
    model = Job
    template_name = "marketing/jobs/detail.html"
    context_object_name = "job"

    def get_queryset(self):
        return Job.objects.select_related("created_by")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        job = self.object
        ctx["result_items"] = result_items(job.result)
        ctx["result_rows"] = result_rows(job.result)
        ctx["params_json"] = (
            json.dumps(job.params, indent=2, ensure_ascii=False) if job.params else ""
        )
        ctx["upload"] = Upload.objects.filter(job=job).first()
        ctx["can_cancel"] = can_cancel(job, self.request.user)
        ctx["duration"] = duration_text(job)
        ctx["outlook"] = job_outlook(job).text
        return ctx


# Result keys that are for machines (ids, paths) or shown elsewhere (the error list).
HIDDEN_RESULT_KEYS = {"upload_id", "error_file", "errors", "kind"}
# The result keys of the jobs' runners in words; any other key reads as itself.
RESULT_LABELS = {
    "rows": gettext_lazy("Rows"),
    "valid": gettext_lazy("Valid"),
    "invalid": gettext_lazy("Invalid"),
    "created": gettext_lazy("Created"),
    "updated": gettext_lazy("Updated"),
    "identities": gettext_lazy("Identities"),
    "consents_added": gettext_lazy("Consents added"),
    "mode": gettext_lazy("Mode"),
    "export": gettext_lazy("Export"),
    "left_out": gettext_lazy("Left out"),
    "sha256": gettext_lazy("Sha256"),
    "bytes": gettext_lazy("Bytes"),
    "warning": gettext_lazy("Warning"),
    "recommendation_run": gettext_lazy("Recommendation run"),
    "customers": gettext_lazy("Customers"),
    "offers": gettext_lazy("Offers"),
    "intra_list_diversity": gettext_lazy("Intra list diversity"),
    "ndcg": gettext_lazy("Ndcg"),
    "identity": gettext_lazy("Identity"),
    "models_flagged": gettext_lazy("Models flagged"),
    "flagged_runs": gettext_lazy("Flagged runs"),
    "audience": gettext_lazy("Audience"),
    "size": gettext_lazy("Size"),
    "segment": gettext_lazy("Segment"),
    "count": gettext_lazy("Count"),
    "skipped": gettext_lazy("Skipped"),
    "plan": gettext_lazy("Plan"),
    "status": gettext_lazy("Status"),
    "scoring_run": gettext_lazy("Scoring run"),
    "training_run": gettext_lazy("Training run"),
    "explanation_run": gettext_lazy("Explanation run"),
}
# Result values that are texts (stored in English).
TEXT_RESULT_KEYS = {"warning", "skipped"}


def result_items(result: dict) -> list[tuple[str, str]]:
    """A job's result as readable label/value pairs; nested values as compact JSON."""
    return [(label, value) for label, value, __ in result_rows(result)]


def result_rows(result: dict) -> list[tuple[str, str, bool]]:
    """``result_items`` with, for each value, whether it is in words (a mode, a warning)
    rather than a number, a code or data."""
    rows = []
    for key, value in (result or {}).items():
        if key in HIDDEN_RESULT_KEYS:
            continue
        label = str(RESULT_LABELS.get(key) or key.replace("_", " ").capitalize())
        words = False
        if isinstance(value, dict | list):
            shown = json.dumps(value, ensure_ascii=False)
            value = shown if len(shown) <= 300 else shown[:300] + " …"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        elif key == "mode":
            words = value in Upload.Mode.values
            value = Upload.Mode(value).label if words else value
        elif key in TEXT_RESULT_KEYS and isinstance(value, str):
            value, words = translated(value), True
        rows.append((label, str(value), words))
    return rows


def can_cancel(job: Job, user) -> bool:
    """The same rule as the cancel endpoint: the job's creator or a marketer."""
    return not job.is_finished and (job.created_by_id == user.pk or has_role(user, (MARKETER,)))


def duration_text(job: Job) -> str:
    if not (job.started_at and job.finished_at):
        return ""
    seconds = int((job.finished_at - job.started_at).total_seconds())
    if seconds < 60:
        return _("%(seconds)s s") % {"seconds": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return _("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": seconds}
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
