"""The API's one answer to the services' errors."""

import pytest
from rest_framework.exceptions import NotFound

from marketing.api.exceptions import exception_handler
from marketing.errors import ApplicationError
from marketing.services.exports import ExportFileMissing
from marketing.services.plans import PlanError


def test_it_answers_an_application_error_with_400_and_the_message():
    response = exception_handler(ApplicationError("Freeze the audience first."), {})

    assert response.status_code == 400
    assert response.data == {"detail": "Freeze the audience first."}


def test_it_keeps_the_status_an_error_class_asks_for():
    response = exception_handler(ExportFileMissing("The export has no file yet."), {})

    assert response.status_code == 404
    assert response.data == {"detail": "The export has no file yet."}


def test_it_answers_field_errors_by_field_and_the_whole_as_detail():
    error = PlanError({"cost_per_contact": "Cannot be negative.", "__all__": "No scores."})

    response = exception_handler(error, {})

    assert response.status_code == 400
    assert response.data == {"cost_per_contact": ["Cannot be negative."], "detail": ["No scores."]}


def test_it_leaves_other_errors_to_drf():
    assert exception_handler(NotFound("gone"), {}).status_code == 404
    assert exception_handler(KeyError("bug"), {}) is None


@pytest.mark.parametrize(
    "error",
    [
        "marketing.services.training.TrainingSetupError",
        "marketing.services.scoring.ScoringSetupError",
        "marketing.services.explanations.ExplanationSetupError",
        "marketing.services.recommendations.RecommendationSetupError",
        "marketing.services.exports.ExportError",
        "marketing.services.consent.ConsentError",
        "marketing.ingest.IngestError",
        "marketing.selectors.audiences.AudienceDefinitionError",
        "marketing.services.audience_diversity.AudienceDiversityError",
    ],
)
def test_it_covers_every_service_error(error):
    module, name = error.rsplit(".", 1)
    assert issubclass(getattr(__import__(module, fromlist=[name]), name), ApplicationError)
