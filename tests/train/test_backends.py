"""Process-group backends and attention implementations fit the device, checked on the CPU:
the group serves CPU tensors on CUDA too, and flash-attn 2 only sees half-precision inputs."""

import os

import pytest
import torch
import torch.distributed as dist

from vsdpo.model.pretrained import attention_implementation
from vsdpo.train.distributed import init_distributed
from vsdpo.train.metrics import reduce_over_ranks


class _Captured(Exception):
    pass


def test_the_cuda_group_has_a_cpu_backend_beside_nccl(monkeypatch):
    calls = []

    def capture(*args, **kwargs):
        calls.append((args, kwargs))
        raise _Captured  # never start NCCL: the arguments are all this test needs

    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)  # no GPU here
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", capture)
    precision = torch.get_float32_matmul_precision()
    try:
        with pytest.raises(_Captured):
            init_distributed()
    finally:
        torch.set_float32_matmul_precision(precision)  # init_distributed enables TF32
    assert calls[0][0] == ("cpu:gloo,cuda:nccl",)


def test_metrics_reduce_as_cpu_tensors_in_the_gloo_group(process_group):
    values = {"b": 2.5, "a": 1.0}
    assert reduce_over_ranks(values) == values
    assert reduce_over_ranks(values, op=dist.ReduceOp.MAX) == values


@pytest.mark.parametrize("device_type, dtype, has_fa2, expected", [
    ("cuda", torch.bfloat16, True, "flash_attention_2"),
    ("cuda", torch.float16, True, "flash_attention_2"),
    ("cuda", torch.float32, True, "sdpa"),  # FA2 rejects fp32
    ("cuda", torch.bfloat16, False, "sdpa"),
    ("cpu", torch.bfloat16, True, "sdpa"),
])
def test_flash_attention_only_for_half_precision_on_cuda(device_type, dtype, has_fa2, expected):
    assert attention_implementation(device_type, dtype, has_fa2) == expected
