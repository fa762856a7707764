"""Stress the weight sync between training steps: the sharpest reproducer of the old heap
corruption on gloo (several asynchronous functional all-gathers in flight; the reason
`vsdpo/train/weight_sync.py` gathers one at a time on CPU, as its docstring explains).

    OMP_NUM_THREADS=1 .venv/bin/torchrun --nproc_per_node=2 scripts/stress_weight_sync.py 800
    ... scripts/stress_weight_sync.py 800 --async-on-cpu   # the old gathers, for contrast

Each iteration: a forward and backward of the warm-started tiny policy (FSDP2 over gloo) on
random tokens, clip, AdamW, a metrics all-reduce, then `full_weights` copied into a plain
replica, as the transformers rollout engine does. Prints progress; exits 0 if it survives.
"""

import argparse
import faulthandler
import time

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Replicate

from vsdpo.config import ModelConfig
from vsdpo.model.parallelize import build_policy
from vsdpo.model.pretrained import load_lm, resolve_model_path
from vsdpo.train import weight_sync
from vsdpo.train.distributed import init_distributed
from vsdpo.train.metrics import reduce_over_ranks


def old_gather(param: torch.Tensor) -> torch.Tensor:
    """The landed `_gather` before the fix: asynchronous on every device."""
    if not isinstance(param, DTensor):
        return param
    replicated = [Replicate()] * param.device_mesh.ndim
    return param.redistribute(placements=replicated, async_op=True).to_local()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("iterations", type=int)
    parser.add_argument("--async-on-cpu", action="store_true",
                        help="gather a whole bucket asynchronously on gloo, as before the fix")
    args = parser.parse_args()
    faulthandler.enable()
    if args.async_on_cpu:
        weight_sync._gather = old_gather
    rank, _, device = init_distributed()
    cfg = ModelConfig(path=resolve_model_path("warmstart"))
    policy = build_policy(cfg, device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    replica = dict(load_lm(cfg, device).named_parameters())
    g = torch.Generator().manual_seed(rank)
    t0 = time.perf_counter()
    for i in range(1, args.iterations + 1):
        length = int(torch.randint(20, 200, (1,), generator=g))
        ids_BL = torch.randint(3, policy.lm.config.vocab_size, (2, length), generator=g)
        hidden_BLH = policy(ids_BL, torch.ones_like(ids_BL))
        (hidden_BLH @ policy.lm_head_weight.t()).logsumexp(-1).mean().backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        reduce_over_ranks({"tokens": float(length)})
        with torch.no_grad():
            for name, full in weight_sync.full_weights(policy, 512 << 20):
                replica[name].copy_(full)
        if rank == 0 and i % 50 == 0:
            print(f"iteration {i}/{args.iterations} ({time.perf_counter() - t0:.0f} s)", flush=True)
    dist.barrier()
    if rank == 0:
        print(f"survived {args.iterations} iterations", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
