"""Run under torchrun by tests/test_distributed.py: train, then check what DDP must guarantee.

torchrun --standalone --nproc_per_node=2 tests/ddp_harness.py WORLD.h5 RUN_DIR RESULT.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch.distributed as dist

from conftest import SMALL_MODEL
from crest.config import load_config
from crest.engine.evaluate import evaluate_checkpoint
from crest.engine.train import Trainer

SMALL = [
    *SMALL_MODEL,
    "train.batch_size=16",
    "train.epochs=2",
    "eval.batch_size=16",
    "train.selection=val",  # the opinion is fitted after validation, on every rank
]


def main() -> None:
    world, out, result = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    trainer = Trainer(load_config(None, [f"data.path={world}", *SMALL]), out)
    metrics = trainer.run(cleanup=False)
    assert trainer.model is not None
    digest = hashlib.sha256(
        b"".join(p.detach().cpu().numpy().tobytes() for p in trainer.model.parameters())
    )
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest.hexdigest())
    opinions: list[dict | None] = [None] * dist.get_world_size()
    dist.all_gather_object(opinions, trainer.selection_state.get("opinion"))
    evaluated = evaluate_checkpoint(out / "checkpoints" / "last.pt")  # sharded over the ranks
    if dist.get_rank() == 0:
        keys = (
            "czsl_acc",
            "gzsl_u",
            "gzsl_s",
            "gzsl_h",
            "ausuc",
            "vacuity_seen",
            "vacuity_unseen",
            "confidence",
            "auroc_unseen",
            "ece",
        )
        result.write_text(
            json.dumps(
                {
                    "world_size": dist.get_world_size(),
                    "param_digests": digests,
                    "opinions": opinions,
                    "distributed_eval": {k: evaluated[k] for k in keys},
                    "train_metrics": {
                        k: metrics[k] for k in ("czsl_acc", "gzsl_u", "gzsl_s", "gzsl_h")
                    },
                }
            )
        )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
