"""`init_distributed` on CUDA, modelled on the CPU: the process group is bound to this rank's
GPU (`device_id`) and fp32 matmuls may use TF32."""

import torch
import torch.distributed as dist

from vsdpo.train import distributed


def test_on_cuda_the_group_is_bound_to_the_local_gpu_and_tf32_is_on(monkeypatch):
    calls = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.update(set_device=device))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group",
                        lambda backend, **options: calls.update(backend=backend, **options))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(distributed, "register_rank", lambda rank: None)
    for name, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT="1", RANK="1", WORLD_SIZE="2",
                            LOCAL_RANK="1").items():
        monkeypatch.setenv(name, value)
    precision = torch.get_float32_matmul_precision()
    try:
        assert distributed.init_distributed() == (1, 2, torch.device("cuda", 1))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(precision)
    assert calls == {"set_device": torch.device("cuda", 1), "backend": "cpu:gloo,cuda:nccl",
                     "device_id": torch.device("cuda", 1)}
