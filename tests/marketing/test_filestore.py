"""Files in an S3-compatible object store (FILE_STORE_URL): what one machine writes another
reads, through moto's S3 server. Each "machine" is a local folder of its own."""

import os

import numpy as np
import pandas as pd
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from marketing.filestore import local_copy, media_fetch, media_put, media_remove, model_put
from marketing.filestore import model_registry as registry_here

pytestmark = pytest.mark.django_db


def test_a_model_put_by_one_machine_scores_the_same_on_another(
    object_store, registry_with_model, settings, tmp_path
):
    root, model_id = registry_with_model
    settings.MODEL_REGISTRY_DIR = root  # the machine that trained it
    frame = pd.DataFrame({"age": [25, 61], "job": ["student", "retired"], "balance": [1.5, -0.3]})
    expected = registry_here(model_id).load_served(model_id).predict_proba(frame)
    model_put(model_id)
    assert any(key.startswith(f"campaigns/models/{model_id}/") for key in object_store.keys())

    settings.MODEL_REGISTRY_DIR = tmp_path / "other-machine"
    scored = registry_here(model_id).load_served(model_id).predict_proba(frame)

    np.testing.assert_allclose(scored, expected, rtol=1e-6)
    assert (tmp_path / "other-machine" / model_id).is_dir()


def test_a_file_changed_in_the_store_is_fetched_again(
    object_store, registry_with_model, settings, tmp_path
):
    from recengine.registry import CUSTOMERS_FILE

    root, model_id = registry_with_model
    settings.MODEL_REGISTRY_DIR = root
    model_put(model_id)
    settings.MODEL_REGISTRY_DIR = tmp_path / "b"
    registry_here(model_id)
    customers = tmp_path / "b" / model_id / CUSTOMERS_FILE
    held = customers.read_text()

    # Machine A changes the model's customer list (an erasure) and puts it back.
    settings.MODEL_REGISTRY_DIR = tmp_path / "a"
    registry_here(model_id)
    (tmp_path / "a" / model_id / CUSTOMERS_FILE).write_text(held + "# changed\n")
    model_put(model_id, CUSTOMERS_FILE)

    settings.MODEL_REGISTRY_DIR = tmp_path / "b"
    registry_here(every=True)
    assert customers.read_text() == held + "# changed\n"


def test_an_export_file_is_read_back_on_another_machine_and_removed_everywhere(
    object_store, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "a"
    written = tmp_path / "a" / "exports" / "export-1-meta.csv"
    written.parent.mkdir(parents=True)
    written.write_bytes(b"email\n0f1e\n")
    media_put("exports/export-1-meta.csv")

    settings.MEDIA_ROOT = tmp_path / "b"
    fetched = media_fetch("exports/export-1-meta.csv")
    assert fetched == tmp_path / "b" / "exports" / "export-1-meta.csv"
    assert fetched.read_bytes() == b"email\n0f1e\n"
    assert oct(os.stat(fetched).st_mode & 0o777) == "0o600"

    media_remove(["exports/export-1-meta.csv"])
    assert not fetched.exists()
    assert object_store.keys() == []
    assert media_fetch("exports/export-1-meta.csv") is None


def test_an_upload_rewritten_in_place_goes_back_to_the_store_under_its_name(object_store):
    name = default_storage.save("uploads/customers.csv", ContentFile(b"id,email\n1,a@x.org\n"))
    stored = default_storage.open(name)
    field_file = type("Field", (), {})()  # what local_copy reads of a FieldFile
    field_file.storage, field_file.name = default_storage, name
    field_file.open = lambda mode="rb": default_storage.open(name, mode)
    field_file.close = lambda: None
    stored.close()

    with local_copy(field_file) as path:
        assert path.read_bytes() == b"id,email\n1,a@x.org\n"
        path.write_bytes(b"id,email\n1,\n")
    assert not path.exists()  # the temporary copy is gone

    assert default_storage.open(name).read() == b"id,email\n1,\n"
    assert object_store.keys() == [f"campaigns/media/{name}"]


def test_without_a_store_files_stay_in_this_machines_folders(settings, tmp_path):
    settings.FILE_STORE_URL = ""
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "x.csv").write_text("a\n")
    media_put("exports/x.csv")  # nothing to do
    assert media_fetch("exports/x.csv") == tmp_path / "exports" / "x.csv"
    assert media_fetch("exports/missing.csv") is None
