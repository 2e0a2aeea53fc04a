"""Files that every web and worker machine reads: uploads and their error files, export files
and model artefacts.

With FILE_STORE_URL empty (the embedded default) they are files under DATA_DIR, as on one
machine. With ``FILE_STORE_URL=s3://bucket/prefix`` they live in an S3-compatible object
store (AWS S3, MinIO, ...; S3_ENDPOINT_URL and the usual AWS_* variables say where and with
which keys), so that a model trained on one machine is scored on another:

- uploads and error files go through Django's default storage, which is then
  django-storages' S3 backend (keys under ``prefix/media/``);
- export files and model artefacts, which are written and read as local files, are put in
  the store once written (``media_put``, ``model_put``) and fetched into this machine's
  folder before they are read (``media_fetch``, ``model_registry``): the local folders are
  then a cache, and a file that changed in the store (a model's customer list after an
  erasure) is fetched again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files import File

if TYPE_CHECKING:
    from django.db.models.fields.files import FieldFile

    from recengine.registry import ModelRegistry

MEDIA = "media"
MODELS = "models"


def remote() -> bool:
    """Whether the files live in an object store (else in this machine's folders)."""
    return bool(settings.FILE_STORE_URL)


def _store(area: str) -> Any:
    """The S3 storage of one area (``media`` or ``models``) of the store."""
    from storages.backends.s3 import S3Storage

    return S3Storage(location=f"{settings.FILE_STORE_PREFIX}/{area}".strip("/"))


def _key(storage: Any, name: str) -> str:
    return f"{storage.location}/{name}".lstrip("/")


def _put(area: str, name: str, local: Path) -> None:
    storage = _store(area)
    storage.bucket.upload_file(str(local), _key(storage, name))


def _fetch_objects(area: str, prefix: str, folder: Path) -> int:
    """Download every object under ``prefix`` of ``area`` that this machine's ``folder`` (the
    folder of ``prefix``) lacks or holds another version of; returns how many objects there
    are."""
    storage = _store(area)
    base = _key(storage, prefix).rstrip("/")
    found = 0
    for item in storage.bucket.objects.filter(Prefix=base):
        relative = item.key[len(base) :].lstrip("/")
        local = folder / relative if relative else folder
        found += 1
        stamp = item.last_modified.timestamp()
        if local.is_file():
            held = local.stat()
            if held.st_size == item.size and int(held.st_mtime) == int(stamp):
                continue
        local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, partial = tempfile.mkstemp(dir=local.parent, prefix=".fetch-")
        os.close(handle)
        try:
            storage.bucket.download_file(item.key, partial)
            os.chmod(partial, 0o600)
            os.utime(partial, (stamp, stamp))
            os.replace(partial, local)
        finally:
            Path(partial).unlink(missing_ok=True)
    return found


def _remove(area: str, prefix: str) -> None:
    storage = _store(area)
    storage.bucket.objects.filter(Prefix=_key(storage, prefix)).delete()


# ---- files under MEDIA_ROOT (exports) ---------------------------------------------------------


def media_put(name: str) -> None:
    """Put the file ``MEDIA_ROOT/name`` just written in the store (nothing to do without one)."""
    if remote():
        _put(MEDIA, name, Path(settings.MEDIA_ROOT) / name)


def media_fetch(name: str) -> Path | None:
    """This machine's copy of the stored file ``name`` (fetched when missing or changed), or
    None when the store has no such file."""
    local = Path(settings.MEDIA_ROOT) / name
    if remote():
        if not _fetch_objects(MEDIA, name, local):
            return None
    return local if local.is_file() else None


def media_remove(names: list[str]) -> None:
    """Delete the files ``names`` here and from the store."""
    for name in names:
        (Path(settings.MEDIA_ROOT) / name).unlink(missing_ok=True)
        if remote():
            _remove(MEDIA, name)


@contextmanager
def local_copy(field_file: FieldFile) -> Iterator[Path]:
    """A stored upload as a local file that may be rewritten in place: the file itself on
    this machine's disk, or a temporary copy from the object store that is put back (under
    the same name) when it was changed."""
    storage, name = field_file.storage, str(field_file.name)
    try:
        path = Path(storage.path(name))
    except NotImplementedError:  # not on this machine's disk
        path = None
    if path is not None:
        yield path
        return
    handle, temporary = tempfile.mkstemp(prefix="stored-")
    os.close(handle)
    copy = Path(temporary)
    try:
        with field_file.open("rb") as source, copy.open("wb") as target:
            for block in iter(lambda: source.read(1 << 20), b""):
                target.write(block)
        field_file.close()
        before = copy.stat()
        yield copy
        after = copy.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            storage.delete(name)
            with copy.open("rb") as changed:
                saved = storage.save(name, File(changed))
            if saved != name:
                raise RuntimeError(f"the store saved {name} as {saved}")
    finally:
        copy.unlink(missing_ok=True)


# ---- model artefacts --------------------------------------------------------------------------


def model_registry(*model_ids: str, every: bool = False) -> ModelRegistry:
    """This machine's model registry, with the files of ``model_ids`` (or of every model in
    the store, ``every``) fetched from the store first."""
    from recengine.registry import ModelRegistry

    root = Path(settings.MODEL_REGISTRY_DIR)
    if remote():
        if every:
            storage = _store(MODELS)
            top = _key(storage, "").rstrip("/")
            model_ids = tuple(
                sorted(
                    {
                        item.key[len(top) :].lstrip("/").split("/", 1)[0]
                        for item in storage.bucket.objects.filter(Prefix=f"{top}/")
                    }
                )
            )
        for model_id in model_ids:
            _fetch_objects(MODELS, f"{model_id}/", root / model_id)
    return ModelRegistry(root)


def model_put(model_id: str, *names: str) -> None:
    """Put a model's folder (or only its files ``names``) in the store once written here."""
    if not remote():
        return
    folder = Path(settings.MODEL_REGISTRY_DIR) / model_id
    files = [folder / name for name in names] if names else sorted(folder.rglob("*"))
    for path in files:
        if path.is_file():
            _put(MODELS, f"{model_id}/{path.relative_to(folder).as_posix()}", path)
