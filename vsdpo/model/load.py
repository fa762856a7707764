"""Sharded load: each rank reads only the rows of each weight that its FSDP shard holds.

`from_pretrained` on every rank holds the full fp32 model per rank (~30 GB for a 7B model)
before `fully_shard` keeps 1/world of it. Instead the policy is built on the meta device,
sharded, given empty local storage (`to_empty`), and then `load_sharded` fills each local
shard from the checkpoint's safetensors files with `get_slice`, one tensor at a time: a
rank's peak is its own shards plus one slice being read (mapped from the file, and cast).
"""

import json
from collections import defaultdict
from pathlib import Path

import torch
from safetensors import safe_open
from torch.distributed.tensor import DTensor, Replicate, Shard
from transformers import PreTrainedModel
from transformers.core_model_loading import revert_weight_conversion

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


def checkpoint_files(path: str | Path) -> dict[str, Path]:
    """Tensor name → the safetensors file holding it, from the index of a multi-file
    checkpoint or from the single `model.safetensors`."""
    path = Path(path)
    if (path / INDEX).exists():
        weight_map = json.loads((path / INDEX).read_text())["weight_map"]
        return {name: path / file for name, file in weight_map.items()}
    with safe_open(path / SINGLE, framework="pt") as f:
        return dict.fromkeys(f.keys(), path / SINGLE)


def checkpoint_names(lm: PreTrainedModel) -> dict[str, str]:
    """State-dict key → the key the checkpoint stores it under. They differ where transformers
    renames on load (Qwen2.5-VL: `model.language_model.layers.*` is stored as `model.layers.*`,
    `model.visual.*` as `visual.*`); `save_pretrained` writes the stored names, and vLLM
    expects them. Empty tensors stand in for the weights: only the names are converted."""
    empty = torch.empty(0)
    return {key: next(iter(revert_weight_conversion(lm, {key: empty})))
            for key in lm.state_dict(keep_vars=True)}


@torch.no_grad()
def load_sharded(lm: PreTrainedModel, path: str | Path) -> None:
    """Fill every parameter and persistent buffer of `lm` from the checkpoint at `path`:
    a DTensor gets its local shard only, a plain tensor all of it. Names are the model's
    state-dict keys (the activation-checkpoint wrapper drops its prefix there) as the
    checkpoint stores them (`checkpoint_names`). Tied
    parameters are one tensor under several keys: filled once, through whichever key the
    checkpoint holds. A bf16 checkpoint is cast to the model's dtype as it is copied."""
    files = checkpoint_files(path)
    stored_as = checkpoint_names(lm)
    keys_by_tensor = defaultdict(list)
    for key, tensor in lm.state_dict(keep_vars=True).items():
        keys_by_tensor[id(tensor)].append((stored_as[key], tensor))
    for keys in keys_by_tensor.values():
        stored = [key for key, _ in keys if key in files]
        if not stored:
            raise KeyError(f"{path}: no weight for {[key for key, _ in keys]}")
        # one open per tensor: the file's pages this read maps are unmapped right after it
        with safe_open(files[stored[0]], framework="pt") as f:
            _read_into(f, stored[0], keys[0][1])


def _read_into(f, key: str, target: torch.Tensor) -> None:
    if isinstance(target, DTensor):
        local = target.to_local()
        start = _first_row(target)
        source = f.get_slice(key)[start:start + local.shape[0]]
    else:
        local, source = target, f.get_tensor(key)
    if source.shape != local.shape:
        raise ValueError(f"{key}: checkpoint rows {tuple(source.shape)}, "
                         f"model shard {tuple(local.shape)}")
    local.copy_(source)


def _first_row(param: DTensor) -> int:
    """The checkpoint row where this rank's shard starts: FSDP2 splits dim 0 over the mesh's
    shard dimension like `torch.chunk` (ceil(rows / ranks) rows per rank; the last ranks may
    hold fewer, or none); HSDP's replicate dimension holds the same rows in every group."""
    if param.placements not in ((Shard(0),), (Replicate(), Shard(0))):
        raise ValueError("expected FSDP's (Shard(0),) or HSDP's (Replicate(), Shard(0)), got "
                         f"{param.placements}")
    mesh_dim = len(param.placements) - 1
    rows_per_rank = -(-param.shape[0] // param.device_mesh.size(mesh_dim))
    return min(param.device_mesh.get_local_rank(mesh_dim) * rows_per_rank, param.shape[0])
