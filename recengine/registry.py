"""A model registry on disk: one folder per trained model, enough to reproduce and audit it.

<root>/<model_id>/
    model/          weights or adapter, tokenizer, model.json (ClickModel) or model.pkl
    parts/<name>.pkl  fitted companions of the model, e.g. the baseline trained on the same split
    manifest.json   kind, name, created, config, metrics, data fingerprint, consent snapshot
    customers.txt   pseudonyms of the customers whose rows trained it, one per line, sorted;
                    after a key rotation, a first line "# pseudonym key <fingerprint>" names
                    the key they were re-keyed to
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recengine.config import json_ready
from recengine.score import Scorer
from recengine.train import ClickModel

CUSTOMERS_FILE = "customers.txt"
# A model folder holds pseudonyms and what was learnt from customer data: owner only.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
KEY_LINE = "# pseudonym key "


@dataclass
class ModelRecord:
    model_id: str
    folder: Path
    manifest: dict[str, Any]


class ModelRegistry:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def save(
        self,
        model: Any,
        *,
        name: str,
        fingerprint: str,
        pseudonyms: list[str],
        consent_snapshot: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        parts: dict[str, Any] | None = None,
        served: str = "model",
    ) -> str:
        """Store a fitted ClickModel (or any picklable scorer) and return its id.

        ``parts`` are picklable companions stored beside it (e.g. ``{"baseline": ...}``), read
        back with ``load_part``. ``served`` names what `load_served` returns: "model", or
        "blend" for a stacked part named "blend" whose members are "model" and other parts.
        """
        if served not in ("model", "blend") or (served == "blend" and "blend" not in (parts or {})):
            raise ValueError(f"Cannot serve {served!r}: it is not the model or a stored blend.")
        for part_name in parts or {}:
            _part_file_name(part_name)
        model_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
        folder = self.root / model_id
        tmp = self.root / f".{model_id}.tmp"
        (tmp / "model").mkdir(parents=True)
        if isinstance(model, ClickModel):
            model.save(tmp / "model")
            kind = "click_model"
        else:
            (tmp / "model" / "model.pkl").write_bytes(pickle.dumps(model))
            kind = "pickle"
        if parts:
            (tmp / "parts").mkdir()
            for part_name, part in parts.items():
                (tmp / "parts" / f"{part_name}.pkl").write_bytes(pickle.dumps(part))
        manifest = {
            "model_id": model_id,
            "name": name,
            "kind": kind,
            "created": datetime.now(UTC).isoformat(),
            "fingerprint": fingerprint,
            "n_customers": len(set(pseudonyms)),
            "consent_snapshot": consent_snapshot,
            "metrics": metrics or {},
            "config": config or {},
            "parts": sorted(parts or {}),
            "served": served,
        }
        manifest = json_ready(manifest, allow_nan=True)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        (tmp / CUSTOMERS_FILE).write_text("".join(f"{p}\n" for p in sorted(set(pseudonyms))))
        _make_private(tmp)  # also what the model's own save wrote (weights, tokenizer)
        tmp.rename(folder)  # a half-written model never appears under its id
        return model_id

    def record(self, model_id: str) -> ModelRecord:
        folder = self._folder(model_id)
        return ModelRecord(model_id, folder, json.loads((folder / "manifest.json").read_text()))

    def load(self, model_id: str, device: str = "cpu") -> Scorer:
        record = self.record(model_id)
        if record.manifest["kind"] == "click_model":
            return ClickModel.load(record.folder / "model", device=device)
        # Only files this registry wrote itself are unpickled.
        return pickle.loads((record.folder / "model" / "model.pkl").read_bytes())

    def load_part(self, model_id: str, name: str) -> Any:
        """A companion stored with the model; KeyError when the model has none of that name
        (models saved before parts existed have none)."""
        path = self._folder(model_id) / "parts" / f"{_part_file_name(name)}.pkl"
        if not path.is_file():
            raise KeyError(f"Model {model_id!r} has no {name!r} stored with it")
        # Only files this registry wrote itself are unpickled.
        return pickle.loads(path.read_bytes())

    def load_served(self, model_id: str, device: str = "cpu") -> Scorer:
        """The model the product should score with: the stacked blend when the training run
        chose it (manifest "served": "blend"), bound to the model and parts it combines;
        otherwise the model itself. Models saved before blends existed load as before."""
        record = self.record(model_id)
        if record.manifest.get("served", "model") != "blend":
            return self.load(model_id, device=device)
        blend = self.load_part(model_id, "blend")
        members = {
            name: self.load(model_id, device=device)
            if name == "model"
            else self.load_part(model_id, name)
            for name in blend.names_
        }
        return blend.bind(members)

    def model_ids(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "manifest.json").exists())

    def find_models_using(self, pseudonym: str) -> list[str]:
        """Ids of the models trained on this customer's data (e.g. after an erasure request)."""
        found = []
        for model_id in self.model_ids():
            with open(self.root / model_id / CUSTOMERS_FILE) as lines:
                if any(line.rstrip("\n") == pseudonym for line in lines):
                    found.append(model_id)
        return found

    def customers(self, model_id: str) -> set[str]:
        """The pseudonyms (or erasure tokens) of the customers whose rows trained it."""
        with open(self._folder(model_id) / CUSTOMERS_FILE) as lines:
            return {line.rstrip("\n") for line in lines if not line.startswith(KEY_LINE)}

    def customers_key(self, model_id: str) -> str | None:
        """The fingerprint of the key the model's customer list was last re-keyed to; None
        when it never was (its pseudonyms are from the key in use when it was trained)."""
        with open(self._folder(model_id) / CUSTOMERS_FILE) as lines:
            first = lines.readline().rstrip("\n")
        return first.removeprefix(KEY_LINE) if first.startswith(KEY_LINE) else None

    def rekey_customers(
        self,
        model_id: str,
        rekey: Callable[[list[str]], dict[str, str]],
        *,
        key_id: str,
        chunk_size: int = 10_000,
    ) -> int:
        """Replace each pseudonym in the model's customer list by ``rekey``'s value for it
        (``rekey`` maps a chunk of pseudonyms at a time) and name the new key ``key_id`` in
        the first line. The new list replaces the old one in a single rename, so the file is
        either wholly re-keyed (and says so) or untouched. Returns the number of customers."""
        path = self._folder(model_id) / CUSTOMERS_FILE
        with open(path) as lines:
            old = [line.rstrip("\n") for line in lines if not line.startswith("#")]
        new: list[str] = []
        for start in range(0, len(old), chunk_size):
            chunk = old[start : start + chunk_size]
            mapped = rekey(chunk)
            new += [mapped[p] for p in chunk]
        tmp = path.with_name(f".{CUSTOMERS_FILE}.tmp")
        tmp.write_text(f"{KEY_LINE}{key_id}\n" + "".join(f"{p}\n" for p in sorted(set(new))))
        tmp.chmod(PRIVATE_FILE_MODE)
        os.replace(tmp, path)
        return len(new)

    def replace_customer(self, pseudonym: str, replacement: str) -> list[str]:
        """Put ``replacement`` in place of a customer's pseudonym in every model's customer
        list (an erasure keeps that the model used someone, not who); the ids changed."""
        changed = []
        for model_id in self.find_models_using(pseudonym):
            path = self.root / model_id / CUSTOMERS_FILE
            kept = set(path.read_text().splitlines())
            kept.discard(pseudonym)
            kept.add(replacement)
            tmp = path.with_name(f".{CUSTOMERS_FILE}.tmp")
            tmp.write_text("".join(f"{p}\n" for p in sorted(kept)))
            tmp.chmod(PRIVATE_FILE_MODE)
            tmp.replace(path)
            changed.append(model_id)
        return changed

    def delete(self, model_id: str) -> None:
        shutil.rmtree(self._folder(model_id))

    def _folder(self, model_id: str) -> Path:
        folder = (self.root / model_id).resolve()
        if folder.parent != self.root.resolve() or not (folder / "manifest.json").exists():
            raise KeyError(f"No model {model_id!r} in {self.root}")
        return folder


def _part_file_name(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"A part name is letters, digits and underscores, not {name!r}")
    return name


def _make_private(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE)
