"""`crest train`: train CREST into a run folder, or resume one."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from crest.cli.output import add_model_choice, add_overrides, model_recipe, print_metrics
from crest.config import (
    Config,
    apply_overrides,
    describe_fields,
    load_config,
    validate_config,
)
from crest.engine.resume import folder_config
from crest.engine.train import train
from crest.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train", help="train CREST or a peer (default: CREST on the embedded synthetic world)"
    )
    p.add_argument(
        "--config",
        help="a packaged config (synthetic, cub, sun, awa2, cub-paper, sun-paper, awa2-paper) or a YAML file",
    )
    add_model_choice(p)
    add_overrides(p)
    p.add_argument(
        "--out", type=Path, help="run folder (default runs/<config>-<selection>-seed<N>)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    p.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms")
    p.add_argument("--help-config", action="store_true", help="list every config key and exit")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    if args.help_config:
        print(describe_fields())
        return 0
    overrides = list(args.overrides)
    if args.deterministic:
        overrides.append("train.deterministic=true")
    if args.resume:
        cfg, out = resume_request(args, overrides)
    else:
        cfg = load_config(args.config, model_recipe(args.model, args.config) + overrides)
        model = "" if cfg.model.name == "crest" else f"{cfg.model.name}-"
        out = args.out or Path("runs") / (
            f"{model}{cfg.name}-{cfg.train.selection}"
            f"{'-only' if cfg.train.validation_only else ''}-seed{cfg.train.seed}"
        )
    metrics = train(cfg, out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 speaks
        print(f"\nrun folder: {out}")
        print_metrics(metrics)
    return 0


def resume_request(args: argparse.Namespace, overrides: list[str]) -> tuple[Config, Path]:
    """The folder's own config with the user's overrides applied; the trainer refuses any that
    would change the run (all but a longer train.epochs)."""
    if args.out is None:
        raise ConfigError("--resume needs --out: the run folder to continue")
    if args.config:
        raise ConfigError(
            f"--resume continues {args.out} with its own config; --config {args.config} is not allowed"
        )
    cfg = apply_overrides(folder_config(args.out), overrides)
    validate_config(cfg, f"{args.out} with --set")
    return cfg, args.out
