"""Recognise classes nobody trained on: a trained CREST, features (or images) and a class table.

    >>> import crest
    >>> model = crest.load("runs/cub/checkpoints/last.pt")                    # doctest: +SKIP
    >>> result = model.predict(features, classes=crest.read_class_file("new.csv", model.attribute_names))
    >>> result.top_names[0], result.confidence[0], result.p_unseen[0]         # doctest: +SKIP

New classes are treated as unseen (they get the calibration γ), as in GZSL evaluation. Each input
gets three numbers (docs/method.md §6): ``confidence``, the probability that the decision is right;
``p_unseen``, the belief that the input shows a class not seen in training (unseen or new); and
``vacuity``, the paper's u = K/S (lack of evidence). ``max_risk`` abstains on the inputs whose
confidence falls below a threshold chosen on the validation classes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crest.class_files import ClassTable
from crest.config import Config
from crest.data.schema.benchmark import Benchmark
from crest.engine.checkpoint import load_model, selected_gamma, selected_opinion
from crest.engine.runner import in_memory, run_model
from crest.errors import DataError
from crest.models.contract import ModelOutput, ZSLModel
from crest.opinion import OpinionSettings, abstention_threshold, report


@dataclass
class Prediction:
    """Top-k classes per input, with fused scores, the reported opinion and the attributes
    behind the top class."""

    class_names: list[str]  # every class in play, in score-column order
    unseen: np.ndarray  # (C',) bool: which columns got γ
    scores: np.ndarray  # (N, C') calibrated fused scores
    top: np.ndarray  # (N, k) column indices, best first
    confidence: np.ndarray  # (N,) probability that the top class is right
    p_unseen: np.ndarray  # (N,) belief that the input shows an unseen or new class
    vacuity: (
        np.ndarray
    )  # (N,) the paper's fused u = K/S over the classes in play (NaN: no evidence)
    top_attributes: list[
        list[tuple[str, float]]
    ]  # per input: (attribute, contribution) for the top class
    gamma: float
    # --max-risk: which inputs are answered, the confidence threshold and how it was chosen
    accepted: np.ndarray | None = None
    threshold: float | None = None
    threshold_source: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def top_names(self) -> list[list[str]]:
        return [[self.class_names[j] for j in row] for row in self.top]

    @property
    def uncertainty(self) -> np.ndarray:
        """Deprecated: the paper's vacuity, now ``vacuity`` (see ``confidence`` and ``p_unseen``)."""
        warnings.warn(
            "Prediction.uncertainty is the paper's vacuity u = K/S and is deprecated: use "
            "`vacuity`, or `confidence` (is the decision right?) and `p_unseen` (is the class new?)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.vacuity

    @property
    def coverage(self) -> float:
        """Fraction of inputs answered under ``max_risk`` (1 without it)."""
        return (
            1.0 if self.accepted is None or not len(self.accepted) else float(self.accepted.mean())
        )

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per input (for JSON/CSV)."""
        out = []
        for i, row in enumerate(self.top):
            out.append(
                {
                    "input": i,
                    "top": [
                        {
                            "class": self.class_names[j],
                            "score": float(self.scores[i, j]),
                            "unseen": bool(self.unseen[j]),
                        }
                        for j in row
                    ],
                    "confidence": float(self.confidence[i]),
                    "p_unseen": float(self.p_unseen[i]),
                    "vacuity": float(self.vacuity[i]),
                    **({} if self.accepted is None else {"accepted": bool(self.accepted[i])}),
                    "top_attributes": [
                        {"attribute": a, "contribution": c} for a, c in self.top_attributes[i]
                    ],
                }
            )
        return out


class Predictor:
    """A trained model ready for inference (no CLI, no run folder, no training file needed)."""

    def __init__(
        self,
        model: ZSLModel,
        cfg: Config,
        bench: Benchmark,
        device: torch.device,
        gamma: float,
        seen: np.ndarray,
        unseen: np.ndarray,
        opinion: OpinionSettings | None = None,
    ) -> None:
        self.model, self.cfg, self.bench, self.device, self.gamma = (
            model.eval(),
            cfg,
            bench,
            device,
            gamma,
        )
        self.seen, self.unseen = seen, unseen
        self.opinion = opinion or OpinionSettings()

    @property
    def attribute_names(self) -> list[str]:
        return self.bench.attribute_names

    @property
    def class_names(self) -> list[str]:
        return self.bench.class_names

    def check_features(
        self, features: np.ndarray | torch.Tensor, source: str | Path | None = None
    ) -> torch.Tensor:
        if not isinstance(features, torch.Tensor):
            features = np.asarray(features)
            if features.dtype.kind not in "fiu":  # strings, objects, complex, booleans
                raise DataError(
                    source, "features", f"dtype {features.dtype}; expected real numbers"
                )
        x = torch.as_tensor(features)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        assert self.bench.feature_shape is not None
        want, h, w = self.bench.feature_shape
        if x.dim() != 4 or x.shape[1] != want:
            raise DataError(
                source,
                "features",
                f"shape {tuple(x.shape)}; expected (N, {want}, h, w) feature maps "
                f"(or ({want}, h, w) for one input) as the model was trained on",
            )
        if tuple(x.shape[2:]) != (h, w):
            # the region models read regions by position (the geometry bias, attention maps):
            # another grid would run, and score something the model never learned to read
            raise DataError(
                source,
                "features",
                f"a {x.shape[2]} × {x.shape[3]} grid; the model was trained on {h} × {w} "
                "feature maps (extract the features with the settings the model was trained on)",
            )
        if x.shape[0] == 0:
            raise DataError(source, "features", "no inputs (an empty array); expected at least one")
        finite = torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
        if not finite.all():
            bad = torch.nonzero(~finite).flatten().tolist()
            raise DataError(
                source,
                "features",
                f"input {bad[0]} holds NaN/inf values ({len(bad)} such inputs); expected "
                "finite features",
            )
        return x.float()

    def classes_in_play(
        self, classes: ClassTable | None, mode: str
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(names, class matrix, unseen mask) of the classes in play."""
        if classes is not None and classes.matrix.shape[1] != self.bench.num_attributes:
            raise DataError(
                classes.source,
                "classes",
                f"{classes.matrix.shape[1]} attributes; expected {self.bench.num_attributes}",
            )
        z_model = self.bench.class_matrix()
        if classes is None:
            mask = np.zeros(self.bench.num_classes, bool)
            mask[self.unseen] = True
            return self.class_names, z_model, mask
        if mode == "replace":
            return classes.names, classes.matrix, np.ones(len(classes), bool)
        clash = sorted(set(classes.names) & set(self.class_names))
        if clash:
            raise DataError(
                classes.source,
                f"class '{clash[0]}'",
                "already exists in the model; use other names or replace",
            )
        mask = np.zeros(self.bench.num_classes + len(classes), bool)
        mask[self.unseen] = True
        mask[self.bench.num_classes :] = True
        return self.class_names + classes.names, np.concatenate([z_model, classes.matrix]), mask

    @torch.no_grad()
    def predict(
        self,
        features: np.ndarray | torch.Tensor,
        classes: ClassTable | None = None,
        mode: str = "add",
        top_k: int = 5,
        batch_size: int = 256,
        top_attributes: int = 5,
        gamma: float | None = None,
        source: str | Path | None = None,
        max_risk: float | None = None,
    ) -> Prediction:
        """Rank the classes in play for each input (``mode``: ``add`` new classes or ``replace``
        the model's). ``max_risk`` answers only the inputs whose confidence reaches the threshold
        that kept the error rate of the validation decisions at or below it (without a validation
        phase: the threshold whose accepted inputs have a mean 1 − confidence ≤ ``max_risk``)."""
        if max_risk is not None and not (0.0 <= max_risk <= 1.0 and math.isfinite(max_risk)):
            raise DataError(None, "max_risk", f"{max_risk!r}; expected a fraction in [0, 1]")
        x = self.check_features(features, source)
        names, z, unseen = self.classes_in_play(classes, mode)
        gamma = self.gamma if gamma is None else gamma
        zt = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        bonus = torch.as_tensor(unseen, device=self.device).float() * gamma
        k_attr = min(top_attributes, zt.shape[1])

        def pick(out: ModelOutput, _: torch.Tensor | None) -> dict[str, torch.Tensor]:
            s = out.logits.float() + bonus
            best = s.argmax(dim=1)
            contribution = out.embedding.float() * zt[best]  # f_a · z_{top, a}
            val, idx = contribution.topk(k_attr, dim=1)
            kept = {"scores": s, "logits": out.logits.float()}
            if out.alpha is not None:  # the fused vacuity u = K/S over the classes in play
                kept["vacuity"] = out.alpha.shape[1] / out.alpha.float().sum(dim=1)
            for name, value in out.branches.items():
                kept[f"logits_{name}"] = value.float()
            return kept | {"idx": idx, "val": val}

        got = run_model(self.model, in_memory(x, batch_size, self.device), pick, class_matrix=zt)
        s_all = got["scores"]
        k = min(top_k, s_all.shape[1])
        # ranked in float64 as the decision of the reported opinion is, so that `confidence`
        # always describes top[:, 0]
        calibrated = got["logits"].astype(np.float64) + gamma * unseen.astype(np.float64)
        top = np.argsort(-calibrated, axis=1, kind="stable")[:, :k]
        idx_all, val_all = got["idx"], got["val"]
        attrs = [
            [(self.attribute_names[a], float(v)) for a, v in zip(ia, va, strict=True)]
            for ia, va in zip(idx_all, val_all, strict=True)
        ]
        branches = {k.removeprefix("logits_"): v for k, v in got.items() if k.startswith("logits_")}
        # a model without evidence has no vacuity: NaN says "not given", never a number
        vacuity = got.get("vacuity")
        opinion = report(got["logits"], unseen, gamma, self.opinion, branches, vacuity)
        pred = Prediction(
            names,
            unseen,
            s_all,
            top,
            opinion.confidence,
            opinion.p_unseen,
            vacuity if vacuity is not None else np.full(len(s_all), np.nan),
            attrs,
            gamma,
        )
        if max_risk is not None:
            pred.threshold, pred.threshold_source = abstention_threshold(
                self.opinion, opinion.confidence, max_risk
            )
            pred.accepted = opinion.confidence >= pred.threshold
        return pred

    @torch.no_grad()
    def explain(
        self, features: np.ndarray | torch.Tensor, top_attributes: int = 5
    ) -> list[dict[str, Any]]:
        """Per input: the top attributes by the score its attention explains, with their attention
        over the grid (h, w)."""
        x = self.check_features(features)
        out = self.model(x.to(self.device), return_attention=True)
        if out.attention is None or out.attention_scores is None:
            raise DataError(
                None,
                "model",
                f"{self.cfg.model.name} as configured gives no attribute→region attention: "
                "no attention maps to explain with",
            )
        h, w = x.shape[2:]
        result = []
        for i in range(len(x)):
            top = (
                out.attention_scores[i]
                .topk(min(top_attributes, out.attention_scores.shape[1]))
                .indices.cpu()
                .numpy()
            )
            result.append(
                {
                    "attributes": [self.attribute_names[a] for a in top],
                    "scores": out.attention_scores[i, top].cpu().numpy(),
                    "attention": out.attention[i, top].reshape(len(top), h, w).cpu().numpy(),
                }
            )
        return result

    def features_from_images(
        self, paths: list[str | Path], weights: str | None = None, batch_size: int = 16
    ) -> np.ndarray:
        """Feature maps of image files, extracted with the backbone settings recorded at training time."""
        from PIL import Image

        from crest.data.backbone import build_backbone, image_transform

        meta = self.bench.meta
        if meta.get("source") != "extract" or "image_size" not in meta:
            raise DataError(
                self.bench.path,
                "image_size",
                "the training benchmark was not made by `crest data extract`; "
                "there are no backbone settings to extract image features with — pass features instead",
            )
        recorded = str(meta.get("weights", "imagenet"))
        backbone = build_backbone(weights or recorded, int(meta.get("weights_seed", 0) or 0)).to(
            self.device
        )
        transform = image_transform(int(meta["image_size"]), str(meta.get("resize", "stretch")))
        feats = []
        for start in range(0, len(paths), batch_size):
            batch = []
            for p in paths[start : start + batch_size]:
                if not Path(p).exists():
                    raise DataError(p, None, "image not found")
                with Image.open(p) as img:
                    batch.append(transform(img.convert("RGB")))
            with torch.no_grad():
                feats.append(backbone(torch.stack(batch).to(self.device)).float().cpu())
        return torch.cat(feats).numpy()


#: the name of earlier releases
CrestPredictor = Predictor


def load(
    checkpoint: str | Path,
    data: str | Path | None = None,
    device: str = "auto",
    allow_other_classes: bool = False,
) -> Predictor:
    """A predictor from a checkpoint or an export: the class side saved inside it gives class and
    attribute names and the class matrix (no training file needed; ``data`` overrides)."""
    r = load_model(checkpoint, data=data, device=device, allow_other_classes=allow_other_classes)
    return Predictor(
        r.model,
        r.cfg,
        r.bench,
        r.device,
        selected_gamma(r.state, r.cfg),
        np.asarray(r.state.get("seen_classes", r.bench.seen_classes)),
        np.asarray(r.state.get("unseen_classes", r.bench.unseen_classes)),
        selected_opinion(r.state),
    )
