"""The policy built sharded: the device mesh, then activation checkpointing, compile and FSDP2
per block, then each rank reads only its own shards of the checkpoint."""

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from transformers import PreTrainedModel

from vsdpo.config import ModelConfig
from vsdpo.model.load import load_sharded
from vsdpo.model.policy import Policy
from vsdpo.model.pretrained import meta_lm


def build_mesh(replicate: int, device: torch.device) -> DeviceMesh:
    """The data-parallel mesh FSDP2 shards over: 1-D ("shard") over every rank, or for HSDP
    2-D ("replicate", "shard") of `replicate` groups of world/replicate consecutive ranks —
    under torchrun one node's ranks are consecutive, so with `replicate` = the number of nodes
    the all-gathers and reduce-scatters stay inside a node and only the gradient all-reduce
    of each shard crosses nodes. Every rank still trains on its own samples."""
    world = dist.get_world_size()
    if replicate == 1:
        return init_device_mesh(device.type, (world,), mesh_dim_names=("shard",))
    return init_device_mesh(device.type, (replicate, world // replicate),
                            mesh_dim_names=("replicate", "shard"))


def build_policy(cfg: ModelConfig, device: torch.device, mesh: DeviceMesh | None = None
                 ) -> Policy:
    """Build on the meta device, parallelize (the one place where AC → compile → fully_shard
    happen) over `mesh` (`build_mesh`; None: FSDP over the default group), then allocate and
    read only this rank's shards: no rank ever holds the full model (`vsdpo/model/load.py`)."""
    policy = Policy(meta_lm(cfg, device, compute_dtype=getattr(torch, cfg.dtype)))
    computed = _non_persistent_buffers(policy.lm)
    if policy.visual is not None and cfg.freeze_vision:
        policy.visual.requires_grad_(False)
    parallelize(policy, cfg, mesh)
    policy.to_empty(device=device)
    load_sharded(policy.lm, cfg.path)
    _restore_buffers(computed)
    return policy


def _non_persistent_buffers(lm: PreTrainedModel) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """Buffers computed at construction rather than stored (RoPE's `inv_freq`), as the CPU
    build holds them: `to_empty` leaves garbage in their place and no checkpoint has them."""
    return [(lm.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2], buf.clone())
            for name, buf in lm.named_non_persistent_buffers()]


def _restore_buffers(computed: list[tuple[nn.Module, str, torch.Tensor]]) -> None:
    """Copy the CPU-computed values in and check them: relying on `_init_weights` to recompute
    them depends on the transformers version (5.19 does, 5.17 need not)."""
    for module, name, value in computed:
        module.get_buffer(name).copy_(value)
        if not torch.equal(module.get_buffer(name).cpu(), value):
            raise RuntimeError(f"{type(module).__name__}.{name}: differs from the CPU build's")


def parallelize(policy: Policy, cfg: ModelConfig, mesh: DeviceMesh | None = None) -> None:
    """Activation checkpointing, then compile, then FSDP2 — in that order, per block.

    AC wraps each decoder block so its activations are recomputed in backward; compile
    sees the wrapped block (so the recompute is compiled too); `fully_shard` goes last so
    its hooks sit outside both. Each block is one FSDP unit (decoder layers, and the vision
    blocks of a vision-language policy; compile only for decoder layers, whose shapes do not
    vary with the images), the root holds the rest.
    bf16 mixed precision computes in bf16 and reduces gradients in fp32; the fp32 master
    parameters stay sharded. On a 2-D mesh (HSDP) each parameter is `(Replicate(), Shard(0))`:
    gradients are reduce-scattered inside a replica group, then all-reduced across groups —
    both averaging, so the step is the mean over all ranks, as with FSDP over all of them.
    """
    mp = MixedPrecisionPolicy()
    if cfg.dtype == "bfloat16":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for n, blocks in enumerate(policy.block_lists):
        for i in range(len(blocks)):
            if cfg.activation_checkpointing:
                blocks[i] = checkpoint_wrapper(blocks[i])
            if cfg.compile and n == 0:
                blocks[i].compile()  # in place: parameter names stay those of the checkpoint
            fully_shard(blocks[i], mesh=mesh, mp_policy=mp)
    fully_shard(policy, mesh=mesh, mp_policy=mp)
