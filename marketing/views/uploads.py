"""The upload wizard: choose a file, map its columns, check a dry run, import as a job."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from marketing.ingest.csvfile import DELIMITER_NAMES
from marketing.ingest.fields import ATTRIBUTE_PREFIX, accepted_values, attribute_name
from marketing.ingest.wording import translated, translated_html
from marketing.models import ProfileField, Upload
from marketing.responses import csv_attachment
from marketing.roles import DATA_STEWARD, MARKETER
from marketing.selectors.overview import demo_loaded
from marketing.selectors.uploads import error_file_for_user, errors_for_user, preview_for_user
from marketing.services.audit import log_revealed_upload_rows
from marketing.services.ingest import (
    TARGET_FIELDS,
    IngestError,
    upload_create,
    upload_import,
    upload_preview,
    upload_set_mapping,
)
from marketing.views.jobs import result_items
from marketing.views.mixins import ExportThrottleMixin, RoleRequiredMixin

UPLOADERS = (MARKETER, DATA_STEWARD)
SKIP = ""
KEEP_AS_ATTRIBUTE = "__attribute__"
ENCODINGS = [
    ("", gettext_lazy("UTF-8 (most files)")),
    ("latin-1", gettext_lazy("Latin-1 (ISO 8859-1)")),
    ("cp1252", gettext_lazy("Windows-1252 (older Excel)")),
    ("utf-16", "UTF-16"),
]
# Encodings whose label is their name alone, the same in every language.
ENCODINGS_BY_NAME = ("utf-16",)

KIND_HELP = {
    Upload.Kind.CUSTOMERS: gettext_lazy(
        "One row per customer: profile columns, optional contact details and consent columns. "
        "Re-uploading updates customers by their id."
    ),
    Upload.Kind.OFFERS: gettext_lazy(
        "What you can recommend: products, plans or deals with a title, category and price."
    ),
    Upload.Kind.INTERACTIONS: gettext_lazy(
        "Responses to offers: which customer saw, clicked or bought which offer, and when."
    ),
}


class UploaderMixin(RoleRequiredMixin):
    """Wizard steps are for the roles that may upload; viewers see the list and results only."""

    read_roles = UPLOADERS
    write_roles = UPLOADERS


def wizard_steps(current: int) -> list[dict]:
    names = [
        gettext("Choose file"),
        gettext("Map columns"),
        gettext("Check"),
        gettext("Import"),
    ]
    return [
        {
            "number": i,
            "name": name,
            "state": "done" if i < current else "current" if i == current else "",
        }
        for i, name in enumerate(names, start=1)
    ]


# ---------------------------------------------------------------- list and detail


class UploadListView(RoleRequiredMixin, ListView):
    template_name = "marketing/uploads/list.html"
    context_object_name = "uploads"
    paginate_by = 25

    def get_queryset(self):
        return Upload.objects.select_related("job", "created_by")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        if not ctx["uploads"]:
            ctx["demo_loaded"] = demo_loaded()
        return ctx


class UploadDetailView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/uploads/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        upload = get_object_or_404(
            Upload.objects.select_related("job", "created_by"), pk=kwargs["pk"]
        )
        ctx["upload"] = upload
        ctx["job"] = upload.job
        # The mode is on the file card already.
        result = upload.job.result if upload.job else {}
        ctx["result_items"] = result_items(
            {key: value for key, value in (result or {}).items() if key != "mode"}
        )
        # The import's own message, said again in the reader's language.
        ctx["job_message"] = translated_html(upload.job.message) if upload.job else ""
        stored = upload.summary.get("errors") or []
        shown = errors_for_user(stored, upload, self.request.user)
        log_revealed_upload_rows(upload=upload, user=self.request.user, stored=stored, shown=shown)
        ctx["row_errors"] = _shown_errors(shown)
        ctx["invalid_rows"] = upload.summary.get("invalid", 0)
        ctx["mapping_rows"] = [
            (_target_label(upload.kind, target), source)
            for target, source in upload.mapping.items()
            if source
        ]
        done = upload.job is not None and upload.job.status == upload.job.Status.SUCCEEDED
        ctx["steps"] = wizard_steps(5 if done else 4 if upload.job else 3)
        ctx["next_step_url"] = _next_step_url(upload)
        return ctx


class UploadErrorFileView(RoleRequiredMixin, ExportThrottleMixin, View):
    """The rows an import refused, as CSV. Rows may hold contact data: uploaders only."""

    read_roles = UPLOADERS

    def get(self, request, pk: int):
        upload = get_object_or_404(Upload, pk=pk)
        if not upload.error_file:
            raise Http404("This upload has no error file.")
        name = f"{upload.original_name.rsplit('.', 1)[0]}-errors.csv"
        return csv_attachment(error_file_for_user(upload, request.user), filename=name)


def _shown_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Row problems as a page shows them: their reasons in the reader's language, as text
    (what is stored, downloaded and answered by the API keeps English)."""
    return [{**error, "reason": translated(error.get("reason", ""))} for error in errors]


# ---------------------------------------------------------------- step 1: the file


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=Upload.Kind.choices, initial=Upload.Kind.CUSTOMERS)
    file = forms.FileField(label=gettext_lazy("CSV file"))
    encoding = forms.ChoiceField(choices=ENCODINGS, required=False)


class UploadCreateView(UploaderMixin, FormView):
    template_name = "marketing/uploads/create.html"
    form_class = UploadForm

    def get_initial(self):
        kind = self.request.GET.get("kind", "")
        return {"kind": kind} if kind in Upload.Kind.values else {}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        form = ctx["form"]
        chosen = form["kind"].value() or Upload.Kind.CUSTOMERS
        ctx["kinds"] = [
            {
                "value": value,
                "label": label,
                "help": KIND_HELP[value],
                "checked": value == chosen,
                "fields": TARGET_FIELDS[value],
                "accepted": accepted_values(value),
            }
            for value, label in Upload.Kind.choices
        ]
        ctx["steps"] = wizard_steps(1)
        ctx["max_upload_bytes"] = settings.MAX_UPLOAD_BYTES
        ctx["encodings_by_name"] = ENCODINGS_BY_NAME
        return ctx

    def form_valid(self, form):
        try:
            upload = upload_create(
                kind=form.cleaned_data["kind"],
                file=form.cleaned_data["file"],
                encoding=form.cleaned_data["encoding"] or None,
                by=self.request.user,
            )
        except IngestError as exc:
            form.add_error("file", translated_html(str(exc)))
            return self.form_invalid(form)
        return redirect("upload-mapping", pk=upload.pk)


# ---------------------------------------------------------------- step 2: the mapping


def _column_label(kind: str, target: str) -> str:
    """Short column titles for the sample table: attributes by their name."""
    return (
        target.removeprefix(ATTRIBUTE_PREFIX)
        if target.startswith(ATTRIBUTE_PREFIX)
        else (_target_label(kind, target))
    )


def _target_label(kind: str, target: str) -> str:
    """What a target field is called on a page, in the reader's language."""
    if target.startswith(ATTRIBUTE_PREFIX):
        return gettext("Profile attribute “%(name)s”") % {
            "name": target.removeprefix(ATTRIBUTE_PREFIX)
        }
    for spec in TARGET_FIELDS.get(kind, []):
        if spec.name == target:
            return spec.display_label
    return target


class UploadStepMixin(UploaderMixin):
    """Loads the upload and sends the user to the right step when this one is already done."""

    kwargs: dict[str, Any]  # set by the view this is mixed into
    allowed_statuses: tuple[str, ...] = (Upload.Status.UPLOADED, Upload.Status.MAPPED)

    @cached_property
    def upload(self) -> Upload:
        return get_object_or_404(Upload, pk=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        if self.upload.status not in self.allowed_statuses:
            return redirect(_next_step_url(self.upload))
        return super().get(request, *args, **kwargs)


def _next_step_url(upload: Upload) -> str:
    if upload.status == Upload.Status.UPLOADED:
        return reverse("upload-mapping", args=[upload.pk])
    if upload.status == Upload.Status.MAPPED and upload.job_id is None:
        return reverse("upload-preview", args=[upload.pk])
    return reverse("upload-detail", args=[upload.pk])


class UploadMappingView(UploadStepMixin, TemplateView):
    template_name = "marketing/uploads/mapping.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        upload = self.upload
        chosen = kwargs.get("chosen") or self._chosen_from_mapping(upload.mapping)
        types = {
            **self._default_types(),
            **upload.summary.get("chosen_types", {}),
            **kwargs.get("types", {}),
        }
        examples = upload.summary.get("column_examples", {})
        targets = TARGET_FIELDS[upload.kind]
        ctx.update(
            upload=upload,
            steps=wizard_steps(2),
            delimiter_label=(
                gettext(DELIMITER_NAMES[upload.delimiter])
                if upload.delimiter in DELIMITER_NAMES
                else f"“{upload.delimiter}”"
            ),
            targets=targets,
            allow_attributes=upload.kind == Upload.Kind.CUSTOMERS,
            identifiers_hashed=settings.HASH_IDENTIFIERS_ON_UPLOAD
            and upload.kind == Upload.Kind.CUSTOMERS,
            keep_value=KEEP_AS_ATTRIBUTE,
            rows=[
                {
                    "index": i,
                    "header": header,
                    "chosen": chosen.get(header, SKIP),
                    "type": types.get(header, ""),
                    "examples": examples.get(header, []),
                }
                for i, header in enumerate(upload.headers)
            ],
            required=[spec for spec in targets if spec.required],
            mode=kwargs.get("mode") or upload.mode,
            modes=Upload.Mode.choices,
            data_types=ProfileField.DataType.choices,
            error=kwargs.get("error", ""),
        )
        return ctx

    @staticmethod
    def _chosen_from_mapping(mapping: dict[str, str]) -> dict[str, str]:
        """The stored mapping (target -> header) as the choice per header."""
        chosen = {}
        for target, header in mapping.items():
            if header:
                chosen[header] = (
                    KEEP_AS_ATTRIBUTE if target.startswith(ATTRIBUTE_PREFIX) else target
                )
        return chosen

    def _default_types(self) -> dict[str, str]:
        """Header -> the type an attribute column gets unless the user changes it: the
        catalogue's for a known attribute, else the one guessed from the file."""
        upload = self.upload
        names = self._attribute_names()
        stored = dict(
            ProfileField.objects.filter(name__in=names.values()).values_list("name", "data_type")
        )
        guessed = upload.summary.get("column_types", {})
        return {
            header: stored.get(names.get(header, attribute_name(header)), "")
            or guessed.get(header, "")
            for header in upload.headers
        }

    def _attribute_names(self) -> dict[str, str]:
        """Header -> the profile attribute name the stored mapping gives it."""
        return {
            header: target.removeprefix(ATTRIBUTE_PREFIX)
            for target, header in self.upload.mapping.items()
            if header and target.startswith(ATTRIBUTE_PREFIX)
        }

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        upload = self.upload
        names = self._attribute_names()
        defaults = self._default_types()
        targets = {spec.name for spec in TARGET_FIELDS[upload.kind]}
        chosen: dict[str, str] = {}
        types: dict[str, str] = {}
        mapping: dict[str, str] = {name: "" for name in targets}
        used: dict[str, str] = {}
        problems = []
        for i, header in enumerate(upload.headers):
            choice = request.POST.get(f"col-{i}", SKIP)
            chosen[header] = choice
            if choice == SKIP:
                continue
            if choice == KEEP_AS_ATTRIBUTE and upload.kind == Upload.Kind.CUSTOMERS:
                name = names.get(header) or attribute_name(header) or f"column_{i + 1}"
                target = ATTRIBUTE_PREFIX + name
                data_type = request.POST.get(f"type-{i}", "")
                if data_type and data_type != defaults.get(header):
                    types[header] = data_type
            elif choice in targets:
                target = choice
            else:
                problems.append(
                    gettext("Column “%(header)s” has an unknown target.") % {"header": header}
                )
                continue
            if target in used:
                problems.append(
                    gettext(
                        "“%(target)s” is chosen for two columns: “%(first)s” and “%(second)s”. "
                        "Choose it once."
                    )
                    % {
                        "target": _target_label(upload.kind, target),
                        "first": used[target],
                        "second": header,
                    }
                )
                continue
            used[target] = header
            mapping[target] = header
        mode = request.POST.get("mode", "")
        if mode not in Upload.Mode.values:
            problems.append(gettext("Choose how to handle invalid rows."))
        if not problems:
            try:
                upload_set_mapping(
                    upload=upload, mapping=mapping, mode=mode, types=types, by=request.user
                )
            except IngestError as exc:
                problems.append(translated_html(str(exc)))
        if problems:
            ctx = self.get_context_data(
                chosen=chosen,
                types=types,
                mode=mode,
                error=mark_safe(" ".join(conditional_escape(problem) for problem in problems)),
            )
            return self.render_to_response(ctx, status=400)
        return redirect("upload-preview", pk=upload.pk)


# ---------------------------------------------------------------- step 3: the dry run


class UploadPreviewView(UploadStepMixin, TemplateView):
    template_name = "marketing/uploads/preview.html"
    allowed_statuses = (Upload.Status.MAPPED,)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        upload = self.upload
        ctx.update(upload=upload, steps=wizard_steps(3), error=kwargs.get("error", ""))
        try:
            preview = upload_preview(upload=upload)
        except IngestError as exc:
            ctx["error"] = translated_html(str(exc))
            return ctx
        preview = preview_for_user(preview, upload, self.request.user)
        preview = {**preview, "errors": _shown_errors(preview["errors"])}
        sample = preview.get("sample") or []
        columns = list(sample[0].keys()) if sample else []
        all_or_nothing = upload.mode == Upload.Mode.ALL_OR_NOTHING
        ctx.update(
            preview=preview,
            sample_columns=[_column_label(upload.kind, c) for c in columns],
            sample_rows=[[row.get(c, "") for c in columns] for row in sample],
            blocked=all_or_nothing and preview["invalid"] > 0,
            nothing_valid=preview["valid"] == 0,
            importable=preview["valid"] > 0 and (preview["invalid"] == 0 or not all_or_nothing),
        )
        return ctx

    def post(self, request, *args, **kwargs):
        if self.upload.status != Upload.Status.MAPPED:
            return redirect(_next_step_url(self.upload))
        try:
            job = upload_import(upload=self.upload, by=request.user)
        except IngestError as exc:
            return self.render_to_response(
                self.get_context_data(error=translated_html(str(exc))), status=400
            )
        messages.info(request, gettext("Import started as job #%(job)s.") % {"job": job.pk})
        return redirect("upload-detail", pk=self.upload.pk)
