"""A checkpoint as transformers reads it: the full model (the transformers engine's copy) or
its shape alone on the meta device, its tokenizer, the model class and attention
implementation, and the names `warmstart` and `tiny-vl` resolved to their cached directories."""

import contextlib

import torch
import torch.distributed as dist
from torch import nn
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText,
                          AutoTokenizer, PreTrainedModel)

from vsdpo.config import ModelConfig
from vsdpo.model.load import checkpoint_names


def load_lm(cfg: ModelConfig, device: torch.device,
            compute_dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A full fp32 copy of the model whose forward will run in `compute_dtype`."""
    attn = attention_implementation(device.type, compute_dtype, _importable("flash_attn"))
    auto = auto_class(AutoConfig.from_pretrained(cfg.path))
    lm = auto.from_pretrained(cfg.path, dtype=torch.float32, attn_implementation=attn)
    return lm.to(device)


def meta_lm(cfg: ModelConfig, device: torch.device, compute_dtype: torch.dtype
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
    from vsdpo.model.tiny_vl import tiny_vl_path
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
