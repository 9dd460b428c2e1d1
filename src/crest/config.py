"""Typed run configuration: dataclass defaults, one small YAML per dataset, ``--set a.b=v`` overrides.

Every field carries its documentation in ``metadata["help"]`` (shown by ``crest train --help-config``).
Defaults are the paper's (docs/method.md §7 lists them all); per-dataset YAML files hold only what differs.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crest.errors import ConfigError
from crest.settings.dazle import DazleConfig
from crest.settings.fields import doc
from crest.settings.msdn import MsdnConfig
from crest.settings.transzero import TransZeroConfig

#: the registered models (crest.models.registry holds one entry per name)
MODEL_NAMES = ("crest", "dazle", "transzero", "msdn")


@dataclass
class DataConfig:
    path: str | None = doc(
        None, "benchmark HDF5 file; empty = the embedded synthetic world (generated on first use)"
    )
    num_workers: int = doc(0, "DataLoader worker processes for feature streaming")
    cache: str = doc(
        "auto",
        "where feature maps are read from: read once into the model's device memory, into host "
        "RAM, or streamed from the file every batch; auto picks device, then ram, then stream by "
        "the free memory it measures (every mode gives the same batches)",
        ("auto", "device", "ram", "stream"),
    )
    sampler: str = doc(
        "uniform", "batch sampler: uniform shuffling, or class-aware P×K", ("uniform", "pk")
    )
    pk_images: int = doc(
        4, "K, images per class in a batch of the pk sampler (P = batch_size // K)"
    )


@dataclass
class ModelConfig:
    name: str = doc(
        "crest",
        "the model to train: crest, or a peer reimplemented from its paper (docs/peers.md); "
        "a peer reads its own section (dazle, transzero, msdn)",
        MODEL_NAMES,
    )
    d: int = doc(300, "model width d of both grounding transformers")
    d_ff: int = doc(512, "FFN hidden width")
    dropout: float = doc(0.4, "dropout p in attention blocks and FFNs")
    attribute_self_attention: bool = doc(
        True, "one self-attention block over attribute queries before VGT"
    )
    center_attribute_vectors: bool = doc(
        True,
        "subtract the mean attribute word vector before L2-normalising V (real attribute phrases "
        "share words: CUB's have a mean cosine of 0.55, which leaves the attribute queries nearly "
        "collinear at the start)",
    )
    encoder: str = doc(
        "geometry",
        "region encoder: TransZero's geometry-aware bias or plain",
        ("geometry", "plain"),
    )
    mu: float = doc(0.1, "μ, weight of the AGT branch in the fused embedding (Eq. 16, 18)")
    score_mu: float | None = doc(
        None,
        "μ of the reported scores (Eq. 18) when it differs from the training μ: set by "
        "train.select_mu under selection val; empty = model.mu",
    )
    bank_size: int = doc(32, "φ, number of meta-patterns in the bank")
    bank_dim: int = doc(64, "d_p, meta-pattern width (d_p < A)")
    bank_topk: int = doc(0, "sparse matching: keep the top-k bank weights (0 = dense)")
    use_bank: bool = doc(True, "use the meta-pattern bank on the AGT scores")
    agt_init: str = doc(
        "default",
        "initialisation of AGT's region→attribute map W_4: PyTorch's default, or zero as "
        "TransZero++ starts its maps (a^A = 0 at step 0)",
        ("default", "zero"),
    )
    front_init: str = doc(
        "default",
        "initial bias of the region embeddings: PyTorch's default, or centered = −W x̄ with x̄ "
        "the mean L2-normalised region of a sample of training images, so that the embedded "
        "regions start centred on the data (data-dependent initialisation): regions share a "
        "large common direction (the mean region has norm 0.6-0.65 on the like worlds), which "
        "otherwise dominates every token the transformers read (docs/method.md §8.8)",
        ("default", "centered"),
    )
    vgt_value_gain: float = doc(
        1.0,
        "multiplier on the initial weights of VGT's decoder value and output maps (1 = "
        "PyTorch's default): at 1 the image's part of a^V is 0.5 % of its variance at step 0, "
        "the rest is the attribute query carried by the residual, so VGT must first grow the "
        "attention path before its scores depend on the image (docs/method.md §8.8)",
    )
    vgt_init: str = doc(
        "default",
        "initialisation of VGT's output map W_V: N(0, 1/d), or zero (a^V = 0 at step 0, as "
        "TransZero++ starts AGT's W_4): Adam then grows W_V along the first gradients, and "
        "VGT's scores reach a useful scale in a few steps (docs/method.md §8.8)",
        ("default", "zero"),
    )
    residual_init: str = doc(
        "default",
        "initial residual branches of the attention blocks: PyTorch's default, or zero = every "
        "feed-forward output layer and every self-attention output map starts at zero, so each "
        "block starts as the identity and grows its branches from the first gradients "
        "(zero-initialised residual branches, as SkipInit, Fixup and ReZero start deep "
        "networks); the cross-attention maps keep vgt_value_gain (docs/method.md §8.8)",
        ("default", "zero"),
    )
    agt_gain: float = doc(
        1.0,
        "multiplier on the initial W_4 of AGT (1 = PyTorch's default; agt_init=zero overrides "
        "it): at 1 AGT's class logits start with a standard deviation of about 15, random noise "
        "that the fused logits carry until training has shrunk it (docs/method.md §8.8)",
    )
    shared_front: bool = doc(
        False,
        "true: VGT and AGT share the region and attribute embeddings (the paper); false "
        "(default, chosen on validation classes): each direction has its own two Linear maps, "
        "so neither shapes the embedding the other reads (docs/method.md §8.6)",
    )
    fusion: str = doc("average", "evidence fusion of the two branches", ("average", "dempster"))
    use_vgt: bool = doc(True, "visual grounding branch (Table 2: w/o VGT sets false)")
    use_agt: bool = doc(True, "attribute grounding branch (Table 2: w/o AGT sets false)")
    inference_chunk: int = doc(
        -1,
        "samples per forward piece without autograd (eval, predict); same outputs, less "
        "memory; -1 = auto (16 on the CPU, whole batch on a GPU), 0 = whole batch",
    )


@dataclass
class LossConfig:
    lambda_cal: float = doc(0.2, "λ_CAL, weight of the self-calibration term of ARISE")
    lambda_edl: float = doc(0.001, "λ_EDL, weight of the evidential loss")
    ce_over: str = doc(
        "seen", "ARISE cross-entropy over seen classes (paper) or all classes", ("seen", "all")
    )
    sc_form: str = doc(
        "code",
        "self-calibration form: peer code's −log mean mass, or the paper's",
        ("code", "paper"),
    )
    use_vicl: bool = doc(True, "visual instance contrastive loss (Table 2: w/o VICL)")
    vicl_tau: float = doc(0.1, "τ, VICL temperature")
    vicl_delta: float = doc(
        -1.0, "δ, minimum similarity of a same-class positive (−1: always accept)"
    )
    use_digs: bool = doc(True, "meta-pattern guidance loss (Table 2: w/o DIGS)")
    digs_margin: float = doc(1.0, "Δ, DIGS triplet margin")
    use_edl: bool = doc(True, "evidential loss (Table 2: w/o EDL)")
    edl_over: str = doc(
        "seen",
        "classes of L_EDL's Dirichlets: the seen classes (the paper) or every class in play (seen ∪ "
        "unseen of the task), so that the KL term also removes evidence for unseen classes",
        ("seen", "all"),
    )
    anneal_epochs: int = doc(10, "ξ, epochs over which the EDL KL weight rises to 1")
    gamma_con: float = doc(1.0, "γ_con, weight of the conflict-consistency term")
    attribute_regression: float = doc(0.0, "optional extra: MSE(a, z^y) weight (off in the paper)")
    cross_branch: float = doc(0.0, "optional extra: MSE between branch scores (off in the paper)")
    branch_supervision: float = doc(
        1.0,
        "weight of ARISE (CE + λ_CAL·SC) on each branch's own logits s^V and s^A, besides the fused "
        "one (0 = the paper: branches learn only through the fused embedding and L_EDL, and the "
        "slower one starves: docs/method.md §8)",
    )


@dataclass
class TrainConfig:
    epochs: int = doc(200, "epochs (one epoch = one pass over trainval)")
    batch_size: int = doc(64, "global batch size (split across ranks under torchrun)")
    optimizer: str = doc(
        "adam",
        "adam (CREST), rmsprop (DAZLE's and MSDN's released recipes) or sgd",
        ("adam", "rmsprop", "sgd"),
    )
    lr: float = doc(1e-4, "learning rate")
    weight_decay: float = doc(
        1e-4, "weight decay (L2 added to the gradient, as torch's optimizers do)"
    )
    momentum: float = doc(0.0, "momentum of rmsprop and sgd (unused by adam)")
    ema_decay: float = doc(
        0.0,
        "exponential moving average of the weights after every optimizer step (0 = off; e.g. "
        "0.999): the average is what is evaluated, chosen, checkpointed and reported, for every "
        "model alike",
    )
    warmup_steps: int = doc(
        0,
        "linear learning-rate warm-up over the first N optimizer steps of each phase, from lr/N "
        "to lr (0 = none): Adam's first steps move every weight by about lr at once, which "
        "throws a post-LayerNorm transformer's logits far from uniform (docs/method.md §8.8)",
    )
    min_steps_per_epoch: int = doc(
        0,
        "at least N optimizer steps an epoch (0 = off): where a phase's training rows fill "
        "fewer than N batches of train.batch_size, its batch shrinks to rows // N (a multiple "
        "of the ranks, at least one a rank), so a small world's epoch is not a handful of "
        "steps; a large one keeps train.batch_size (docs/method.md §8.8)",
    )
    patience: int = doc(
        0,
        "stop a phase once its selection score has not improved for N epochs (0 = train every "
        "epoch): under selection val the validation phase stops on validation H (best over γ, "
        "and μ) and the final phase retrains to the chosen epoch; under test-oracle the final "
        "phase stops on test H (labelled oracle); refused under selection final",
    )
    seed: int = doc(0, "random seed (data order, dropout, initialisation)")
    precision: str = doc("fp32", "fp32, or bf16 autocast (CUDA or CPU)", ("fp32", "bf16"))
    device: str = doc("auto", "auto (CUDA when available), cpu, cuda, cuda:N")
    deterministic: bool = doc(False, "torch deterministic algorithms (slower on CUDA)")
    compile: bool = doc(
        False,
        "train through torch.compile; the first step compiles (3-4 min on a 2-core CPU at the "
        "CUB shape, where the compiled step was no faster than eager: see docs/performance.md)",
    )
    compile_backend: str = doc(
        "inductor",
        "torch.compile backend (aot_eager traces without generating kernels: a quick check)",
    )
    selection: str = doc(
        "final",
        "model selection: final epoch; val = epoch and γ on validation classes, then retrain on trainval; "
        "test-oracle = best on test (labelled as such)",
        ("final", "val", "test-oracle"),
    )
    select_mu: bool = doc(
        True,
        "under selection val, choose μ with the epoch and γ on the validation classes (grid "
        "0, 0.1, …, 1 over the fused scores μ s^A + (1 − μ) s^V); the final model trains with "
        "model.mu as the validation model did and scores with the chosen μ (model.score_mu); "
        "false keeps model.mu for both (the paper's fixed per-dataset μ)",
    )
    validation_only: bool = doc(
        False,
        "under selection val, stop after the validation phase: metrics.json holds validation's "
        "choice (epoch, γ, μ) and its validation H and CZSL; nothing is trained on trainval and "
        "the test split is never read (for choosing settings and comparing recipes)",
    )
    max_steps_per_epoch: int = doc(0, "cap on steps per epoch for quick runs (0 = full epochs)")
    eval_every: int = doc(1, "evaluate every N epochs (the last epoch always)")
    test_curve: bool = doc(
        False,
        "under selection val, also score the test split after every train.eval_every epochs of "
        "the final phase (a curve to look at; validation has already chosen the epoch); false "
        "reads the test split once, after the chosen epoch",
    )
    logger: str = doc(
        "none",
        "experiment tracking of every per-epoch metric and loss term: TensorBoard event files in "
        "RUN/tensorboard (pip install crest-zsl[tensorboard]) or Weights & Biases (crest-zsl[wandb]; "
        "offline into RUN/wandb when the service cannot be reached)",
        ("none", "tensorboard", "wandb"),
    )


@dataclass
class EvalConfig:
    gamma: float = doc(
        2.0, "γ, calibration added to unseen-class scores (Eq. 18) for selection final"
    )
    batch_size: int = doc(256, "evaluation batch size")
    opinion: str = doc(
        "validation",
        "the reported opinion (confidence, p_unseen; not in the paper, docs/method.md §6): "
        "validation = T and level b fitted on the validation classes under selection val "
        "(fixed values otherwise); fixed = T 1 and no level always",
        choices=("validation", "fixed"),
    )
    error_model: bool = doc(
        False,
        "under opinion=validation, also fit a logistic model of right/wrong over the signals of "
        "docs/method.md §6.2 and report it as confidence where it ranks errors better on "
        "validation (cross-validated); off by default: it did not carry over from the "
        "validation-phase model to the trainval model (§6.2)",
    )


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    dazle: DazleConfig = field(default_factory=DazleConfig)
    transzero: TransZeroConfig = field(default_factory=TransZeroConfig)
    msdn: MsdnConfig = field(default_factory=MsdnConfig)
    name: str = doc("synthetic", "config name, recorded in the run folder")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The rows of the paper's Table 2, as overrides of the full model.
ABLATIONS: dict[str, list[str]] = {
    "full": [],
    "no_agt": ["model.use_agt=false"],
    "no_vgt": ["model.use_vgt=false"],
    "no_edl": ["loss.use_edl=false"],
    "no_vicl": ["loss.use_vicl=false"],
    "no_digs": ["loss.use_digs=false"],
    "lambda_cal=0": ["loss.lambda_cal=0"],
}

CONFIG_DIR = Path(__file__).parent / "configs"

#: (key, lowest, highest, lowest included, highest included) of every bounded number
RANGES: tuple[tuple[str, float, float, bool, bool], ...] = (
    ("data.num_workers", 0, math.inf, True, False),
    ("data.pk_images", 1, math.inf, True, False),
    ("model.d", 1, math.inf, True, False),
    ("model.d_ff", 1, math.inf, True, False),
    ("model.dropout", 0, 1, True, False),
    ("model.mu", 0, 1, True, True),
    ("model.score_mu", 0, 1, True, True),
    ("model.vgt_value_gain", 0, math.inf, False, False),
    ("model.agt_gain", 0, math.inf, True, False),
    ("model.bank_size", 1, math.inf, True, False),
    ("model.bank_dim", 1, math.inf, True, False),
    ("model.bank_topk", 0, math.inf, True, False),
    ("model.inference_chunk", -1, math.inf, True, False),
    ("loss.lambda_cal", 0, math.inf, True, False),
    ("loss.lambda_edl", 0, math.inf, True, False),
    ("loss.vicl_tau", 0, math.inf, False, False),
    ("loss.vicl_delta", -1, 1, True, True),
    ("loss.digs_margin", 0, math.inf, True, False),
    ("loss.anneal_epochs", 0, math.inf, True, False),
    ("loss.gamma_con", 0, math.inf, True, False),
    ("loss.attribute_regression", 0, math.inf, True, False),
    ("loss.cross_branch", 0, math.inf, True, False),
    ("loss.branch_supervision", 0, math.inf, True, False),
    ("train.epochs", 1, math.inf, True, False),
    ("train.batch_size", 1, math.inf, True, False),
    ("train.lr", 0, math.inf, False, False),
    ("train.weight_decay", 0, math.inf, True, False),
    ("train.momentum", 0, 1, True, False),
    ("train.ema_decay", 0, 1, True, False),
    ("train.warmup_steps", 0, math.inf, True, False),
    ("train.min_steps_per_epoch", 0, math.inf, True, False),
    ("train.patience", 0, math.inf, True, False),
    ("train.seed", 0, math.inf, True, False),
    ("train.max_steps_per_epoch", 0, math.inf, True, False),
    ("train.eval_every", 1, math.inf, True, False),
    ("eval.gamma", -math.inf, math.inf, False, False),
    ("eval.batch_size", 1, math.inf, True, False),
)


def _interval(lo: float, hi: float, lo_in: bool, hi_in: bool) -> str:
    if hi == math.inf and lo == -math.inf:
        return "a finite number"
    if hi == math.inf:
        return f"{'≥' if lo_in else '>'} {lo:g}"
    return f"in {'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"


def validate_config(cfg: Config, source: str = "config") -> None:
    """Ranges and cross-field rules, checked before any work starts; a ConfigError names the key."""
    for key, lo, hi, lo_in, hi_in in RANGES:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is None:  # optional fields: empty means "not set"
            continue
        ok = math.isfinite(value) and (lo < value or (lo_in and value == lo))
        ok = ok and (value < hi or (hi_in and value == hi))
        if not ok:
            raise ConfigError(
                f"{source}: {key}={value!r}; expected {_interval(lo, hi, lo_in, hi_in)}"
            )
    if cfg.train.validation_only and cfg.train.selection != "val":
        raise ConfigError(
            f"{source}: train.validation_only=true with train.selection={cfg.train.selection!r}; "
            "expected selection val (only the validation protocol has a validation phase)"
        )
    if cfg.train.patience > 0 and cfg.train.selection == "final":
        raise ConfigError(
            f"{source}: train.patience={cfg.train.patience} with train.selection='final'; "
            "expected selection val or test-oracle (patience stops on a selection score, and "
            "final has none)"
        )
    m = cfg.model
    if m.name != "crest":  # a peer's own section checks itself; CREST's switches do not apply
        problems = getattr(cfg, m.name).validate(source)
        if problems:
            raise ConfigError(problems[0])
        return
    if not (m.use_vgt or m.use_agt):
        raise ConfigError(
            f"{source}: model.use_vgt and model.use_agt are both false; expected at least one branch"
        )
    if m.bank_topk > m.bank_size:
        raise ConfigError(
            f"{source}: model.bank_topk={m.bank_topk} > model.bank_size={m.bank_size}; expected "
            "top-k ≤ the number of meta-patterns (0 = dense)"
        )
    if m.use_agt and m.use_bank and cfg.loss.use_digs and m.bank_size < 2:
        raise ConfigError(
            f"{source}: model.bank_size={m.bank_size}; DIGS contrasts the best and second-best "
            "meta-pattern, so it needs at least 2 (or loss.use_digs=false)"
        )


def validate_for_data(cfg: Config, num_attributes: int, source: str = "config") -> None:
    """The rules that need the benchmark: the bank is narrower than the attribute vector."""
    m = cfg.model
    if m.name == "crest" and m.use_agt and m.use_bank and m.bank_dim >= num_attributes:
        raise ConfigError(
            f"{source}: model.bank_dim={m.bank_dim} for {num_attributes} attributes; expected "
            f"d_p < A (the bank summarises the attribute scores), e.g. {max(1, num_attributes // 2)}"
        )


def _coerce(text: Any, annotation: Any, where: str) -> Any:
    """Turn a YAML or command-line value into the field's type, or raise ConfigError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text is None or (isinstance(text, str) and text.lower() in ("", "none", "null")):
            return None
        return _coerce(text, args[0], where)
    if annotation is bool:
        if isinstance(text, bool):
            return text
        if isinstance(text, str) and text.lower() in (
            "true",
            "1",
            "yes",
            "on",
            "false",
            "0",
            "no",
            "off",
        ):
            return text.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{where}: expected true/false, got {text!r}")
    try:
        if annotation in (int, float) and isinstance(text, bool):
            raise TypeError  # YAML's true/false is not a number
        if annotation is int:
            if isinstance(text, float) and not text.is_integer():
                raise ValueError
            value = int(text)
            if abs(value) > 2**63 - 1:
                raise OverflowError
            return value
        if annotation is float:
            return float(text)
        if annotation is str:
            return str(text)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {text!r}") from exc
    raise ConfigError(f"{where}: unsupported type {annotation}")


def _set(cfg: Config, dotted: str, value: Any, source: str) -> None:
    section_name, _, key = dotted.partition(".")
    if not key:
        if section_name == "name":
            cfg.name = str(value)
            return
        raise ConfigError(
            f"{source}: '{dotted}' is not a config key; expected section.key (e.g. train.epochs)"
        )
    section = getattr(cfg, section_name, None)
    if section is None or not dataclasses.is_dataclass(section):
        sections = ", ".join(f.name for f in dataclasses.fields(Config) if f.name != "name")
        raise ConfigError(f"{source}: unknown section '{section_name}'; expected one of {sections}")
    fields = {f.name: f for f in dataclasses.fields(section)}
    if key not in fields:
        raise ConfigError(
            f"{source}: unknown key '{dotted}'; {section_name} has {', '.join(fields)}"
        )
    f = fields[key]
    hints = typing.get_type_hints(type(section))
    coerced = _coerce(value, hints[key], f"{source}: {dotted}")
    choices = f.metadata.get("choices")
    if choices and coerced not in choices:
        raise ConfigError(
            f"{source}: {dotted}={coerced!r}; expected one of {', '.join(map(str, choices))}"
        )
    setattr(section, key, coerced)


def apply_overrides(cfg: Config, overrides: list[str], source: str = "--set") -> Config:
    """Apply ``a.b=v`` strings in order."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{source}: '{item}' is not of the form section.key=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: '{item}': the value is not valid YAML ({exc})") from exc
        _set(cfg, key.strip(), parsed, source)
    return cfg


def _apply_mapping(cfg: Config, mapping: dict[str, Any], source: str) -> None:
    for key, value in mapping.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                _set(cfg, f"{key}.{sub}", v, source)
        else:
            _set(cfg, key, value, source)


def resolve_config_file(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"config file {path} not found")
        return path
    packaged = CONFIG_DIR / f"{name_or_path}.yaml"
    if packaged.exists():
        return packaged
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"unknown config '{name_or_path}'; expected a YAML file or one of: {known}")


def read_yaml(path: Path) -> Any:
    """A YAML file's content (plain YAML only: tags that would build objects are refused)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror or exc}); expected a YAML file"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason}); expected a YAML file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc


def dataset_of(config: str | None) -> str:
    """The dataset a config is for (``cub`` for ``cub``, ``cub-paper`` or ``path/cub.yaml``):
    whose peer recipes apply to it."""
    if not config:
        return "synthetic"
    return Path(config).stem.removesuffix("-paper")


def load_config(name_or_path: str | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML (a packaged name such as ``cub`` or a file), then ``--set`` overrides."""
    cfg = Config()
    path = resolve_config_file(name_or_path or "synthetic")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    cfg.name = path.stem
    _apply_mapping(cfg, raw, str(path))
    apply_overrides(cfg, overrides or [])
    validate_config(cfg, f"{path}" + (" with --set" if overrides else ""))
    return cfg


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config from its dict form (as saved in runs and checkpoints)."""
    cfg = Config()
    _apply_mapping(cfg, data, "saved config")
    return cfg


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def describe_fields() -> str:
    """Every config key with its default and documentation (for --help-config)."""
    lines = []
    for section in dataclasses.fields(Config):
        if section.name == "name":
            continue
        instance = getattr(Config(), section.name)
        for f in dataclasses.fields(instance):
            lines.append(
                f"{section.name}.{f.name} = {getattr(instance, f.name)!r}: {f.metadata.get('help', '')}"
            )
    return "\n".join(lines)
