"""IsolationForest over the baseline's deviation vectors, and its persisted form.

The forest sees each (window, entity)'s robust z-scores (clipped to +-``Z_CLIP``, missing as
0), so one model serves entities of any volume and catches combinations of moderate
deviations that no single feature threshold would. Its alarm threshold is calibrated on the
training scores (their 99.9th percentile plus a margin); in the combined detector a forest
alarm also needs a corroborating feature deviation (see ``engine``).

A saved model records its model version, feature list, training window and the versions of
scikit-learn, numpy and lakewatch; ``load_model`` refuses a file whose versions differ from
the running ones (a pickled forest from another scikit-learn may score differently without
any error).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

import pipeline
from pipeline.detection.features import FEATURES
from pipeline.files import replacing

Z_CLIP = 20.0
FORMAT_VERSION = 1
THRESHOLD_QUANTILE = 0.999
THRESHOLD_MARGIN = 0.02


class ModelVersionError(RuntimeError):
    """The saved model was made by other library versions or for other features."""


def library_versions() -> dict[str, str]:
    return {"sklearn": sklearn.__version__, "numpy": np.__version__,
            "lakewatch": pipeline.__version__, "format": str(FORMAT_VERSION)}


def to_matrix(z_rows: np.ndarray) -> np.ndarray:
    """z vectors (n, len(FEATURES)) -> the forest's input: NaN -> 0, clipped."""
    m = np.nan_to_num(np.asarray(z_rows, dtype=float), nan=0.0, posinf=Z_CLIP, neginf=-Z_CLIP)
    return np.clip(m, -Z_CLIP, Z_CLIP)


@dataclass
class IForestModel:
    estimator: IsolationForest
    threshold: float
    features: tuple[str, ...] = FEATURES
    model_version: str = ""
    trained_from: str | None = None
    trained_to: str | None = None
    train_rows: int = 0
    versions: dict[str, str] = field(default_factory=library_versions)
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def score(self, z_rows: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher = more anomalous, about 0.3..0.8)."""
        if len(z_rows) == 0:
            return np.zeros(0)
        return -self.estimator.score_samples(to_matrix(z_rows))

    def describe(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "features": list(self.features),
                "trained_from": self.trained_from, "trained_to": self.trained_to,
                "train_rows": self.train_rows, "threshold": self.threshold,
                "versions": self.versions, "created_at": self.created_at}


def fit_iforest(z_rows: np.ndarray, *, trees: int = 100, seed: int = 0,
                trained_from: str | None = None, trained_to: str | None = None,
                min_rows: int = 50) -> IForestModel:
    """Fit on normal windows' z vectors; threshold: 99.9th percentile score plus a margin."""
    x = to_matrix(z_rows)
    if len(x) < min_rows:
        raise ValueError(f"need at least {min_rows} normal windows to train, got {len(x)}")
    est = IsolationForest(n_estimators=trees, max_samples=min(256, len(x)),
                          random_state=seed, n_jobs=1)
    est.fit(x)
    scores = -est.score_samples(x)
    threshold = float(np.quantile(scores, THRESHOLD_QUANTILE)) + THRESHOLD_MARGIN
    created = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha1(x.tobytes()).hexdigest()[:8]  # noqa: S324 - an id, not security
    return IForestModel(estimator=est, threshold=threshold, model_version=f"{created}-{digest}",
                        trained_from=trained_from, trained_to=trained_to, train_rows=len(x),
                        created_at=created)


def save_model(model: IForestModel, path: Path) -> Path:
    """Write atomically (tmp + rename) so a reader never sees half a model."""
    payload = {"format": FORMAT_VERSION, "meta": model.describe(), "model": model}
    with replacing(path) as tmp, tmp.open("wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_model(path: Path) -> IForestModel:
    """Load a saved model; ModelVersionError names every mismatch with the running code.

    The metadata is checked before the estimator is used; the file must come from this
    installation's own model directory (pickle executes code, never load foreign files).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no anomaly model at {path}: run 'lakewatch detect --mode train'")
    with path.open("rb") as fh:
        payload = pickle.load(fh)  # noqa: S301 - our own model file, see docstring
    if not isinstance(payload, dict) or "meta" not in payload:
        raise ModelVersionError(f"{path} is not a lakewatch anomaly model")
    meta = payload["meta"]
    problems = []
    current = library_versions()
    saved = meta.get("versions", {})
    for lib, ver in current.items():
        if saved.get(lib) != ver:
            problems.append(f"{lib} {saved.get(lib)!r} in the model, {ver!r} running")
    if tuple(meta.get("features", ())) != FEATURES:
        problems.append(f"features {meta.get('features')} in the model, {list(FEATURES)} now")
    if problems:
        raise ModelVersionError(
            f"anomaly model {path} (version {meta.get('model_version')}) does not match this "
            f"installation: {'; '.join(problems)}. Retrain with 'lakewatch detect --mode train'.")
    return payload["model"]
