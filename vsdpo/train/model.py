"""Model loading and parallelism: the policy, its FSDP2 sharding, the process group.

The trainer never calls the language-model head inside the model: the fused loss takes the
final hidden states and the head's weight, so the `[N, V]` logits never exist. `Policy`
wraps a transformers causal LM and makes that explicit — its forward returns hidden states.
Because `Policy` is the FSDP root, its forward all-gathers the root's own parameters
(embeddings, final norm, lm_head) and, as the root, keeps them unsharded until backward.
So right after `policy(...)`, `policy.lm_head_weight` is the full `[V, H]` tensor that
autograd tracks, and its gradient is reduce-scattered back into the shard by FSDP's
post-backward — no extra all-gather for the loss, no DTensor inside the kernel.
"""

import atexit
import contextlib
import ctypes
import functools
import os
import socket
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText,
                          AutoTokenizer, PreTrainedModel)

from vsdpo.config import ConfigError, ModelConfig
from vsdpo.train.faults import register_rank
from vsdpo.train.images import Images
from vsdpo.train.load import checkpoint_names, load_sharded


class Policy(nn.Module):
    def __init__(self, lm: PreTrainedModel):
        super().__init__()
        self.lm = lm
        self.image_token_id = getattr(lm.config, "image_token_id", None)

    @property
    def visual(self) -> nn.Module | None:
        """A vision-language policy's vision tower (a property: no second module path)."""
        return getattr(self.lm.model, "visual", None)

    def forward(self, input_ids_BL: torch.Tensor, attention_mask_BL: torch.Tensor,
                images: Images | None = None) -> torch.Tensor:
        """Final (normed) hidden states `[B, L, H]`; `images` fill the rows' image tokens."""
        if self.visual is None:
            return self.lm.model(input_ids=input_ids_BL, attention_mask=attention_mask_BL,
                                 use_cache=False).last_hidden_state
        if images is None:
            return self._without_images(input_ids_BL, attention_mask_BL)
        out = self.lm.model(input_ids=input_ids_BL, attention_mask=attention_mask_BL,
                            pixel_values=images.pixels_PD, image_grid_thw=images.grid_I3,
                            mm_token_type_ids=(input_ids_BL == self.image_token_id).int(),
                            use_cache=False)
        return out.last_hidden_state

    def _without_images(self, input_ids_BL, attention_mask_BL) -> torch.Tensor:
        """Rows without images still run the vision tower, on one blank image of a single
        merged token: its FSDP units all-gather (and reduce-scatter) on every rank in the same
        order whatever each rank's rows hold. Its outputs join the graph with weight 0, the
        DeepStack features (Qwen3-VL) too: every tower tensor gets a gradient on every rank,
        or ranks with and without images would reduce-scatter different tensors."""
        merge, patch = self.visual.spatial_merge_size, self.visual.patch_embed
        grid_I3 = torch.tensor([[1, merge, merge]], device=input_ids_BL.device)
        dim = patch.in_channels * patch.temporal_patch_size * patch.patch_size ** 2
        pixels_PD = torch.zeros(merge * merge, dim, device=input_ids_BL.device)
        blank = self.lm.model.get_image_features(pixels_PD, grid_I3)
        deepstack = getattr(blank, "deepstack_features", None) or []
        features = [*blank.pooler_output, *(f for layer in deepstack for f in layer)]
        hidden_BLH = self.lm.model(input_ids=input_ids_BL, attention_mask=attention_mask_BL,
                                   use_cache=False).last_hidden_state
        return hidden_BLH + 0 * sum(f.sum() for f in features)

    @functools.cached_property
    def checkpoint_names(self) -> dict[str, str]:
        """State-dict key of `lm` → the name its checkpoint (and vLLM) uses."""
        return checkpoint_names(self.lm)

    @property
    def lm_head_weight(self) -> torch.Tensor:
        return self.lm.get_output_embeddings().weight

    @property
    def block_lists(self) -> list[nn.ModuleList]:
        """The decoder layers, and the vision blocks of a vision-language policy."""
        if self.visual is None:
            return [self.lm.model.layers]
        return [self.lm.model.language_model.layers, self.visual.blocks]


def init_distributed(timeout_s: float | None = None) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (or a group of one): on CUDA, NCCL for CUDA
    tensors and gloo for CPU ones (object collectives, DCP's planning, metric sums); else gloo.
    On CUDA the group is bound to this rank's GPU (`device_id`: NCCL's communicator is made
    at once, for the right device), and fp32 matmuls may use TF32 (`high` precision: fp32
    master weights and fp32 losses run on tensor cores; bf16 compute is unaffected).

    A collective that waits longer than `timeout_s` (torch's default when None) fails instead
    of hanging: gloo raises in the waiting rank, NCCL's watchdog aborts it. A group that
    already exists keeps its own timeout. Each rank leaves its host and pid in the rendezvous
    store, so that `naming_dead_ranks` can tell which peer has gone. A run alone (no torchrun)
    hosts its store on a free port: a fixed one collides with another such run on the machine.
    """
    check_restartable_launch(os.environ)
    cuda = torch.cuda.is_available()
    device = torch.device("cpu")
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        torch.set_float32_matmul_precision("high")
    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("LOCAL_RANK", "0")
        options = {} if timeout_s is None else {"timeout": timedelta(seconds=timeout_s)}
        if cuda:
            options["device_id"] = device
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", **options)
    rank = dist.get_rank()
    register_rank(rank)
    return rank, dist.get_world_size(), device


def check_restartable_launch(env: Mapping[str, str]) -> None:
    """Refuse `torchrun --max-restarts=N` (N > 0) over a rendezvous store that torchrun's
    agents share across restarts. The restarted workers would find the last group's keys
    still in that store, and read a dead peer's address from them: gloo's connect is
    refused, or waits forever (pytorch#135712). With sharing off, each group gets a fresh
    store, hosted by its rank 0."""
    if env.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and \
            int(env.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0:
        raise ConfigError("torchrun --max-restarts > 0 needs TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 "
                          "in torchrun's environment: a restarted group would read the dead "
                          "group's addresses from the shared rendezvous store (pytorch#135712)")


def exit_process(status: int = 0) -> NoReturn:
    """End a process that joined a gloo group: run the `atexit` handlers, flush, `os._exit`.

    Why not a normal exit: `destroy_process_group` does not stop gloo's worker threads
    (DTensor's sharding cache keeps the device mesh, and through it the group, alive), and
    one may still be freeing the tensors of the last collective, which takes the GIL. Once
    CPython 3.11 has begun to finalize, a thread asking for the GIL is ended inside that C++
    destructor: `terminate called without an active exception`, SIGABRT (pytorch#190489).
    Skipping finalization leaves nothing half-done: every file and engine is closed by now.
    C's `exit` (not `os._exit`) still runs the C++ static destructors — vLLM's CPU backend
    unlinks its shared-memory segments there — with the GIL held, so no thread runs Python.
    """
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.PyDLL(None).exit(status)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_lm(cfg: ModelConfig, device: torch.device,
            compute_dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A full fp32 copy of the model whose forward will run in `compute_dtype`."""
    attn = attention_implementation(device.type, compute_dtype, _importable("flash_attn"))
    auto = auto_class(AutoConfig.from_pretrained(cfg.path))
    lm = auto.from_pretrained(cfg.path, dtype=torch.float32, attn_implementation=attn)
    return lm.to(device)


def auto_class(config):
    """`AutoModelForImageTextToText` for a vision-language config, else `AutoModelForCausalLM`."""
    return AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM


def parameter_checkpoint_names(path: str) -> set[str]:
    """The checkpoint names of the model's parameters (tied ones once), from a meta-device
    build: no weight is read. A checkpoint file may also hold buffers, which no stream sends."""
    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        lm = auto_class(config).from_config(config)
    names = checkpoint_names(lm)
    return {names[key] for key, _ in lm.named_parameters()}


def attention_implementation(device_type: str, compute_dtype: torch.dtype,
                             has_flash_attn: bool) -> str:
    """flash-attn 2 on CUDA when installed and the forward runs in bf16/fp16 (it rejects fp32);
    SDPA otherwise. The compute dtype decides, not the fp32 master weights: under FSDP's
    `MixedPrecisionPolicy(param_dtype=bf16)` every attention input is bf16."""
    half = compute_dtype in (torch.bfloat16, torch.float16)
    return "flash_attention_2" if device_type == "cuda" and half and has_flash_attn else "sdpa"


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def resolve_model_path(path: str) -> str:
    """`warmstart` names the embedded default, `tiny-vl` a tiny random vision-language model:
    built once by rank 0, then cached; the other ranks take rank 0's path (their own cache key
    could differ if the sources just changed)."""
    if path not in ("warmstart", "tiny-vl"):
        return path
    from vsdpo.train.tiny_vl import tiny_vl_path
    from vsdpo.warmstart import warmstart
    build = warmstart if path == "warmstart" else tiny_vl_path
    if not dist.is_initialized():
        return str(build())
    built = [str(build()) if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(built)
    return built[0]


def load_tokenizer(cfg: ModelConfig):
    tok = AutoTokenizer.from_pretrained(cfg.path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


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
    read only this rank's shards: no rank ever holds the full model (`vsdpo/train/load.py`)."""
    policy = Policy(_meta_lm(cfg, device, compute_dtype=getattr(torch, cfg.dtype)))
    computed = _non_persistent_buffers(policy.lm)
    if policy.visual is not None and cfg.freeze_vision:
        policy.visual.requires_grad_(False)
    parallelize(policy, cfg, mesh)
    policy.to_empty(device=device)
    load_sharded(policy.lm, cfg.path)
    _restore_buffers(computed)
    return policy


def _meta_lm(cfg: ModelConfig, device: torch.device, compute_dtype: torch.dtype
             ) -> PreTrainedModel:
    """`load_lm`'s model without its weights: every parameter on the meta device, the buffers
    on the CPU as their constructors compute them. In eval mode, as `from_pretrained` leaves it
    (dropout off)."""
    attn = attention_implementation(device.type, compute_dtype, _importable("flash_attn"))
    config = AutoConfig.from_pretrained(cfg.path)
    with _parameters_on_meta():
        lm = auto_class(config).from_config(config, dtype=torch.float32, attn_implementation=attn)
    return lm.eval()


@contextlib.contextmanager
def _parameters_on_meta():
    """Each parameter moves to the meta device as it is registered (its CPU storage is never
    written), while buffers keep their computed values, as accelerate's
    `init_empty_weights(include_buffers=False)` does."""
    register = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None and not param.is_meta:  # a tied one already is: it stays one
            module._parameters[name] = nn.Parameter(param.to("meta"),
                                                    requires_grad=param.requires_grad)

    nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


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
