import pytest

from tests.marketing.training_helpers import finished_run


@pytest.fixture
def trained(settings, registry_with_model, term_deposit, marketer):
    """A finished run whose model (tiny BERT on age, job, balance) is in the registry."""
    root, model_id = registry_with_model
    settings.MODEL_REGISTRY_DIR = root
    return finished_run(term_deposit, model_id=model_id, by=marketer)
