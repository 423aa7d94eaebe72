"""A fitted text classifier as one object: the Keras network with what it needs to read texts
(n-grams and IDF, word vocabulary, labels), and its files: ``model.keras`` (loaded with
``safe_mode=True``) beside plain JSON/NPZ data. Training lives in
:mod:`transferflow.models.wide_deep`;
this module is all that scoring imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transferflow.models.member import Member
from transferflow.text.features import FeatureEncoder, NgramFeaturizer
from transferflow.text.tokens import Vocabulary


@dataclass
class TextModel:
    """A fitted network with what it needs to read texts: n-grams, word vocabulary, labels."""

    network: Any  # keras.Model
    featurizer: NgramFeaturizer
    tokens: list[str]
    labels: list[str]
    max_len: int
    members: list[str]  # "<view>/<strategy>" per member, in network order
    info: dict[str, Any] = field(default_factory=dict)
    _encoder: FeatureEncoder | None = field(default=None, init=False, repr=False, compare=False)

    def encoder(self) -> FeatureEncoder:
        """The text encoder of this model (made once: it keeps lookup tables)."""
        if self._encoder is None:
            self._encoder = FeatureEncoder(self.featurizer, Vocabulary(self.tokens), self.max_len)
        return self._encoder

    def predict_proba(self, texts: list[str], batch_size: int = 1024) -> np.ndarray:
        """Class probabilities, columns in ``labels`` order."""
        from transferflow.models.network import predict_proba

        texts = list(texts)
        return predict_proba(
            self.network, self.encoder().encode(texts, batch_size), len(texts), batch_size
        )

    def member_proba(self, texts: list[str], batch_size: int = 1024):
        """Each member's class probabilities and its weight in the mean.

        Returns:
            (array (texts, members, classes), weights (members,), summing to 1).
        """
        from transferflow.models.network import mean_weights, member_proba

        texts = list(texts)
        batches = self.encoder().encode(texts, batch_size)
        proba = member_proba(self.network, batches, len(texts), batch_size)
        return proba, mean_weights(self.network)

    def member_weights(self) -> list[Member]:
        """Each member's weights (wide kernel and bias, deep kernel)."""
        from transferflow.models.network import member_slices

        return member_slices(self.network, len(self.labels))

    # --- files: model.keras + ngrams.json + idf.npz + vocab.json + model.json (all plain data) ---
    FILES = ("model.keras", "ngrams.json", "idf.npz", "vocab.json", "model.json")

    def write(self, folder: Path) -> dict[str, Path]:
        """Write the model's files into ``folder`` (the caller makes it atomic)."""
        from transferflow.models.network import save_network

        folder.mkdir(parents=True, exist_ok=True)
        save_network(self.network, folder / "model.keras")
        meta, idf = self.featurizer.to_bytes()
        (folder / "ngrams.json").write_bytes(meta)
        (folder / "idf.npz").write_bytes(idf)
        (folder / "vocab.json").write_text(
            json.dumps(self.tokens, ensure_ascii=False), encoding="utf-8"
        )
        (folder / "model.json").write_text(
            json.dumps(
                {
                    "format": "transferflow.wide-deep/1",
                    "labels": self.labels,
                    "max_len": self.max_len,
                    "members": self.members,
                    "info": self.info,
                },
                indent=1,
                sort_keys=True,
            ),
            encoding="utf-8",
        )
        return {name: folder / name for name in self.FILES}

    @classmethod
    def read(cls, files: dict[str, Path]) -> TextModel:
        """Load from the files :meth:`write` made (paths already hash-verified by the caller).

        Raises:
            UnreadableModelError: a file is not what :meth:`write` makes, or the ``.keras`` file
                fails Keras' safe load (it holds a ``Lambda`` layer, an unknown function, or is
                no Keras file at all): nothing from it runs.
        """
        from transferflow.errors import UnreadableModelError
        from transferflow.models.network import load_network

        try:
            meta = json.loads(Path(files["model.json"]).read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != "transferflow.wide-deep/1":
                raise ValueError(f"{files['model.json']}: not a transferflow wide-deep model")
            return cls(
                network=load_network(files["model.keras"]),
                featurizer=NgramFeaturizer.from_files(files["ngrams.json"], files["idf.npz"]),
                tokens=json.loads(Path(files["vocab.json"]).read_text(encoding="utf-8")),
                labels=list(meta["labels"]),
                max_len=int(meta["max_len"]),
                members=list(meta["members"]),
                info=dict(meta.get("info", {})),
            )
        except Exception as exc:  # noqa: BLE001 - Keras and NumPy raise many kinds on a bad file
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise UnreadableModelError(f"{type(exc).__name__}: {reason}") from None


__all__ = ["TextModel"]
