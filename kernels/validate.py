"""Input checks of the public loss functions: every failure is a ValueError naming the
argument and saying what it should be."""

import torch

FLOAT_INPUTS = (torch.float32, torch.bfloat16)


def _check_matrix(name: str, x, dtypes=FLOAT_INPUTS) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D tensor, got {_describe(x)}")
    if x.dtype not in dtypes:
        raise ValueError(f"{name}: dtype {x.dtype} is not supported; use one of {dtypes}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: shape {tuple(x.shape)} is empty; pass at least one token and one column")


def _check_vector(name: str, x, num_tokens: int, device, floating: bool = True) -> None:
    if not isinstance(x, torch.Tensor) or x.shape != (num_tokens,):
        raise ValueError(f"{name}: expected shape ({num_tokens},), got {_describe(x)}")
    if x.device != device:
        raise ValueError(f"{name}: on {x.device}, but the logits / hidden states are on {device}; move it there")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name}: dtype {x.dtype} must be floating point (e.g. torch.float32)")


def _check_device(name: str, x: torch.Tensor, ref: torch.Tensor) -> None:
    if x.device != ref.device:
        raise ValueError(f"{name}: on {x.device}, but the student tensors are on {ref.device}; move it there")


def _describe(x) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__


def check_token_inputs(num_tokens, vocab, device, target_ids, credit_weight, advantages, old_logprobs, mask,
                       normalizer):
    """The [N] inputs shared by both entry points."""
    _check_vector("target_ids", target_ids, num_tokens, device, floating=False)
    if target_ids.dtype != torch.int64:
        raise ValueError(f"target_ids: dtype {target_ids.dtype} must be torch.int64")
    if bool(((target_ids < 0) | (target_ids >= vocab)).any()):
        raise ValueError(f"target_ids: every id must lie in [0, {vocab}) (the vocabulary size)")
    _check_vector("credit_weight", credit_weight, num_tokens, device)
    if not bool((torch.isfinite(credit_weight) & (credit_weight >= 0)).all()):
        raise ValueError("credit_weight: every weight must be finite and >= 0")
    _check_vector("advantages", advantages, num_tokens, device)
    if old_logprobs is not None:
        _check_vector("old_logprobs", old_logprobs, num_tokens, device)
    if mask is not None:
        _check_vector("mask", mask, num_tokens, device, floating=False)
        if not (mask.dtype == torch.bool or mask.is_floating_point()):
            raise ValueError(f"mask: dtype {mask.dtype} must be torch.bool or floating point")
    if normalizer is not None and not (float(normalizer) > 0 and float(normalizer) < float("inf")):
        raise ValueError(f"normalizer={normalizer}: must be a finite number > 0, or None for mask.sum()")


def check_logits(student_logits, teacher_logits) -> None:
    _check_matrix("student_logits", student_logits)
    _check_matrix("teacher_logits", teacher_logits)
    _check_device("teacher_logits", teacher_logits, student_logits)
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits: shape {tuple(teacher_logits.shape)} must equal student_logits "
            f"shape {tuple(student_logits.shape)}"
        )


def check_linear(student_hidden, lm_head_weight, teacher_hidden, teacher_weight, chunk_size) -> None:
    _check_matrix("student_hidden", student_hidden)
    _check_matrix("lm_head_weight", lm_head_weight)
    _check_matrix("teacher_hidden", teacher_hidden)
    _check_device("lm_head_weight", lm_head_weight, student_hidden)
    _check_device("teacher_hidden", teacher_hidden, student_hidden)
    if lm_head_weight.shape[1] != student_hidden.shape[1]:
        raise ValueError(
            f"lm_head_weight: shape {tuple(lm_head_weight.shape)} must be [V, {student_hidden.shape[1]}] "
            "to match student_hidden [N, H]"
        )
    if lm_head_weight.dtype != student_hidden.dtype:
        raise ValueError(f"lm_head_weight: dtype {lm_head_weight.dtype} must equal student_hidden's {student_hidden.dtype}")
    if teacher_hidden.shape[0] != student_hidden.shape[0]:
        raise ValueError(f"teacher_hidden: {teacher_hidden.shape[0]} rows, student_hidden has {student_hidden.shape[0]}")
    weight_t = lm_head_weight if teacher_weight is None else teacher_weight
    if teacher_weight is not None:
        _check_matrix("teacher_weight", teacher_weight)
        _check_device("teacher_weight", teacher_weight, student_hidden)
        if teacher_weight.shape[0] != lm_head_weight.shape[0]:
            raise ValueError(f"teacher_weight: {teacher_weight.shape[0]} rows, lm_head_weight has {lm_head_weight.shape[0]}")
    if weight_t.shape[1] != teacher_hidden.shape[1] or weight_t.dtype != teacher_hidden.dtype:
        raise ValueError(
            f"teacher_hidden: shape {tuple(teacher_hidden.shape)} / dtype {teacher_hidden.dtype} must match "
            f"the teacher weight [V, {weight_t.shape[1]}] / {weight_t.dtype}"
        )
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"chunk_size={chunk_size}: must be a positive int, or None for the default")
