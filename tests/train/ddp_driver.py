"""Run by ``python -m torch.distributed.run`` in test_distributed.py: train, then score, on gloo.

The process group is created here once, so that ``genood train`` and ``genood score`` (which
join an existing group) run in the same workers.
"""

from __future__ import annotations

import gc
import sys

import torch.distributed as dist

from genood.cli import main


def run(config: str, out: str, spec: str) -> int:
    dist.init_process_group("gloo")
    try:
        code = main(["train", "--config", config, "--out", out, "--no-progress", "--distributed"])
        if code == 0:
            code = main(
                [
                    "score",
                    "--run",
                    out,
                    "--dataset",
                    spec,
                    "--device",
                    "cpu",
                    "--no-progress",
                    "--distributed",
                    "--batch-size",
                    "5",
                ]
            )
        if code == 0:
            dist.barrier()  # no rank tears gloo down while another still gathers scores
    finally:
        gc.collect()  # free DDP modules in reference cycles before their group (see DistContext.close)
        dist.destroy_process_group()
    return code


if __name__ == "__main__":
    sys.exit(run(*sys.argv[1:4]))
