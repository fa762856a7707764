"""Weight sync: FSDP2 shards → full tensors under checkpoint names (those `save_pretrained`
writes and vLLM loads), one bucket at a time.

The bucket is dropped before the next one is gathered, so the extra memory is one bucket,
never a second copy of the model. The gathers are collectives: every rank must consume the
stream to its end, in the same order.

Overlap only on CUDA. There the all-gathers of a bucket are issued together (asynchronous
functional collectives, queued on NCCL's stream) and all waited before the bucket is handed
to the engine. On CPU each gather is finished before the next starts: several asynchronous
functional collectives in flight on gloo corrupt the heap (`malloc(): unaligned tcache chunk
detected` in a gloo worker thread, or SIGSEGV). The corruption needs the completion to go
through c10d's functional-collective work registry (`wait_tensor`, the path DTensor takes):
in `scripts/stress_weight_sync.py` runs such gathers died in 7 of 10, the same gloo works
waited through their own handles in 0 of 7, and one gather at a time in 0 of 4. One at a
time is also what FSDP2's own collectives do there; docs/rollout.md has the weight sync.

Each local shard is cast to the engine's dtype before its all-gather: a bf16 engine gets half
the bytes of the fp32 masters (~15 instead of ~30 GB per sync at 8B), rounded exactly as the
engine's own cast of a full fp32 tensor would round them.

Frozen parameters (a frozen vision tower: ~1.1 GB of bf16 at 8B) never change, so after the
first sync the stream leaves them out and names them to the engine as `unchanged`, unless the
engine discarded its weights meanwhile (vLLM's level-2 sleep: `Generator.keeps_weights`).
"""

from collections.abc import Iterator

import torch
from torch.distributed._functional_collectives import AsyncCollectiveTensor
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import _CHECKPOINT_PREFIX
from torch.distributed.tensor import DTensor, Replicate

from vsdpo.model.policy import Policy
from vsdpo.rollout.base import Generator


def sync_weights(policy: Policy, generator: Generator, bucket_bytes: int, first: bool) -> None:
    """Stream the full weights (collectives, bucket by bucket) into the engine. Frozen ones go
    the `first` time only, and every time to an engine that does not keep its weights (vLLM
    asleep at level 2); the engine starts from `model.path`, which a resumed checkpoint's
    frozen tensors need not match."""
    skip_frozen = not first and generator.keeps_weights
    generator.load_weights(
        full_weights(policy, bucket_bytes, generator.dtype, trainable_only=skip_frozen),
        unchanged=frozen_names(policy) if skip_frozen else frozenset())


def full_weights(policy: Policy, bucket_bytes: int, dtype: torch.dtype = torch.float32,
                 trainable_only: bool = False) -> Iterator[tuple[str, torch.Tensor]]:
    """(checkpoint name, full tensor in `dtype`, the engine's) pairs, gathered bucket by bucket."""
    bucket, size = [], 0
    for name, param in policy.named_parameters():
        if trainable_only and not param.requires_grad:
            continue
        shard = param.detach().to(dtype)  # a DTensor casts its local shard: no communication
        bucket.append((policy.checkpoint_names[module_key(name)], _gather(shard)))
        size += shard.numel() * shard.element_size()
        if size >= bucket_bytes:
            yield from _finished(bucket)
            bucket, size = [], 0
    yield from _finished(bucket)


def frozen_names(policy: Policy) -> frozenset[str]:
    """Checkpoint names of the parameters no optimizer updates."""
    return frozenset(policy.checkpoint_names[module_key(name)]
                     for name, param in policy.named_parameters() if not param.requires_grad)


def _finished(bucket: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    return [(name, t.wait() if isinstance(t, AsyncCollectiveTensor) else t) for name, t in bucket]


def module_key(name: str) -> str:
    """`lm.model.layers.0._checkpoint_wrapped_module.mlp…` → `model.layers.0.mlp…`, the
    model's state-dict key."""
    return name.removeprefix("lm.").replace(_CHECKPOINT_PREFIX, "")


def _gather(param: torch.Tensor) -> torch.Tensor:
    """The full tensor: still in flight on CUDA (an `AsyncCollectiveTensor`), finished on CPU."""
    if not isinstance(param, DTensor):
        return param
    replicated = [Replicate()] * param.device_mesh.ndim
    return param.redistribute(placements=replicated, async_op=param.is_cuda).to_local()
