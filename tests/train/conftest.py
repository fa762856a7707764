import os

import pytest
import torch
import torch.distributed as dist

from vsdpo.model.tiny import save_tiny_model
from vsdpo.train.distributed import free_port


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer Llama with the project tokenizer, as a transformers directory."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def process_group():
    """A gloo group of one for a module's in-process tests, on one thread (2 shared cores:
    more threads only oversubscribe them). Destroyed after the module: a group left alive
    would send a later module's vLLM engine down the torchrun path (`external_launcher`).
    The rendezvous variables are set for the init only: left in the environment, they would
    send a later test's subprocess to this group's port (EADDRINUSE)."""
    rendezvous = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0",
                      WORLD_SIZE="1")
    saved = {k: os.environ.get(k) for k in rendezvous}
    os.environ.update(rendezvous)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    for k, v in saved.items():
        if v is None:
            del os.environ[k]
        else:
            os.environ[k] = v
    yield
    dist.destroy_process_group()
    torch.set_num_threads(threads)


