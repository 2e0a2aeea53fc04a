import json

from django.views.generic import DetailView, ListView

from marketing.models import Job, Upload
from marketing.roles import MARKETER, has_role
from marketing.selectors.jobs import job_outlook
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


def result_items(result: dict) -> list[tuple[str, str]]:
    """A job's result as readable label/value pairs; nested values as compact JSON."""
    items = []
    for key, value in (result or {}).items():
        if key in HIDDEN_RESULT_KEYS:
            continue
        label = key.replace("_", " ").capitalize()
        if isinstance(value, dict | list):
            shown = json.dumps(value, ensure_ascii=False)
            value = shown if len(shown) <= 300 else shown[:300] + " …"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        elif key == "mode":
            value = Upload.Mode(value).label if value in Upload.Mode.values else value
        items.append((label, str(value)))
    return items


def can_cancel(job: Job, user) -> bool:
    """The same rule as the cancel endpoint: the job's creator or a marketer."""
    return not job.is_finished and (job.created_by_id == user.pk or has_role(user, (MARKETER,)))


def duration_text(job: Job) -> str:
    if not (job.started_at and job.finished_at):
        return ""
    seconds = int((job.finished_at - job.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
