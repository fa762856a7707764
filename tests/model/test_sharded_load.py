"""The sharded load (`vsdpo/model/load.py`) on two gloo ranks: bitwise the weights, buffers
and logits of `from_pretrained`, for the policy and the EMA teacher, from single-file,
multi-file and tied checkpoints; and a peak host memory per rank near its own shards.
"""

import gc
import json
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

from vsdpo.config import ModelConfig, load_config
from vsdpo.train.distributed import free_port

LAYOUTS = ("single", "multi_file", "tied")
WORLD = 2


def _join_group(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    from vsdpo.train.distributed import init_distributed
    init_distributed()


def _load_worker(rank, port, dirs, out_dir):
    """Per layout: the policy's and the EMA teacher's gathered state dicts, the policy's
    buffers and tie, and logits of one padded batch beside `from_pretrained`'s."""
    _join_group(rank, port)
    from vsdpo.model.parallelize import build_policy
    from vsdpo.train.distributed import exit_process
    from vsdpo.train.teacher import build_teacher
    out = {}
    for layout, model_dir in dirs.items():
        cfg = load_config(None, [f"model.path='{model_dir}'", "train.teacher='ema'"])
        policy = build_policy(cfg.model, torch.device("cpu"))
        teacher = build_teacher(cfg, policy, torch.device("cpu"))
        full = StateDictOptions(full_state_dict=True)
        reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        ids_BL = torch.randint(0, reference.config.vocab_size, (2, 7),
                               generator=torch.Generator().manual_seed(0))
        mask_BL = torch.ones_like(ids_BL)
        mask_BL[1, :2] = 0  # left padding, as rollouts batch prompts
        with torch.no_grad():
            hidden_BLH = policy(ids_BL, mask_BL)
            logits_BLV = torch.nn.functional.linear(hidden_BLH, policy.lm_head_weight)
            policy.reshard()
            expected_BLV = reference(input_ids=ids_BL, attention_mask=mask_BL).logits
        out[layout] = {
            "policy": get_model_state_dict(policy, options=full),
            "teacher": get_model_state_dict(teacher.copy, options=full),
            "buffers": {n: b.clone() for n, b in policy.lm.named_buffers()},
            "tied": policy.lm.lm_head.weight is policy.lm.model.embed_tokens.weight,
            "logits": logits_BLV, "expected": expected_BLV}
    torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    exit_process(0)


@pytest.fixture(scope="module")
def checkpoints(tiny_model_dir, tmp_path_factory) -> dict[str, str]:
    """The tiny model as one file, as several files with an index, and with tied embeddings."""
    root = tmp_path_factory.mktemp("layouts")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.save_pretrained(root / "multi_file", max_shard_size="40KB")
    config = AutoConfig.from_pretrained(tiny_model_dir, tie_word_embeddings=True)
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "tied")
    return {"single": str(tiny_model_dir), "multi_file": str(root / "multi_file"),
            "tied": str(root / "tied")}


@pytest.fixture(scope="module")
def loaded(checkpoints, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("loaded")
    mp.spawn(_load_worker, args=(free_port(), checkpoints, str(out)), nprocs=WORLD)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD)]


def test_the_multi_file_checkpoint_has_several_files(checkpoints):
    model_dir = Path(checkpoints["multi_file"])
    assert (model_dir / "model.safetensors.index.json").exists()
    assert len(list(model_dir.glob("model-*.safetensors"))) >= 2


@pytest.mark.parametrize("layout", LAYOUTS)
def test_policy_and_ema_teacher_hold_from_pretrained_weights_bit_for_bit(checkpoints, loaded,
                                                                          layout):
    expected = AutoModelForCausalLM.from_pretrained(checkpoints[layout], dtype=torch.float32)
    for rank_out in loaded:
        for role in ("policy", "teacher"):
            got = {k.removeprefix("lm."): v for k, v in rank_out[layout][role].items()}
            assert got.keys() == expected.state_dict().keys(), role
            for name, tensor in expected.state_dict().items():
                assert torch.equal(got[name], tensor), (role, name)
        buffers = dict(expected.named_buffers())  # RoPE's inv_freq: recomputed, not stored
        assert rank_out[layout]["buffers"].keys() == buffers.keys()
        for name, buffer in buffers.items():
            assert torch.equal(rank_out[layout]["buffers"][name], buffer), name
        assert rank_out[layout]["tied"] == expected.config.tie_word_embeddings


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_loaded_policy_gives_from_pretrained_logits_exactly(loaded, layout):
    for rank_out in loaded:
        assert torch.equal(rank_out[layout]["logits"], rank_out[layout]["expected"])


def _status_bytes(field: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _peak_worker(rank, port, warm_dir, model_dir, path, out_dir):
    """The peak RSS increase of one build (`path`: "sharded" or the old "full" load)."""
    _join_group(rank, port)
    from vsdpo.model.parallelize import build_policy, parallelize
    from vsdpo.model.policy import Policy
    from vsdpo.model.pretrained import load_lm
    from vsdpo.train.distributed import exit_process
    cpu = torch.device("cpu")
    build_policy(ModelConfig(path=warm_dir), cpu)  # imports and first allocations
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_bytes("VmRSS")
    cfg = ModelConfig(path=model_dir)
    if path == "sharded":
        policy = build_policy(cfg, cpu)
    else:  # the build this replaces: a full from_pretrained copy per rank, then fully_shard
        policy = Policy(load_lm(cfg, cpu))
        parallelize(policy, cfg)
    peak = _status_bytes("VmHWM") - before
    Path(out_dir, f"{path}{rank}.json").write_text(json.dumps(peak))
    del policy
    exit_process(0)


@pytest.fixture(scope="module")
def big_model_dir(tmp_path_factory) -> Path:
    """A random Llama of 27M parameters (104 MB in fp32), so weights dominate RSS noise.
    Stored in bf16 like released checkpoints: the old load's cast to fp32 was a full copy."""
    config = LlamaConfig(vocab_size=8192, hidden_size=512, intermediate_size=1536,
                         num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4,
                         tie_word_embeddings=False)
    path = tmp_path_factory.mktemp("big") / "model"
    AutoModelForCausalLM.from_config(config).to(torch.bfloat16).save_pretrained(path)
    return path


def test_peak_host_memory_per_rank_is_its_shards_not_the_model(tiny_model_dir, big_model_dir,
                                                                tmp_path):
    config = AutoConfig.from_pretrained(big_model_dir)
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(config)
    params_bytes = sum(p.numel() * 4 for p in meta.parameters())
    largest_bytes = max(p.numel() * 4 for p in meta.parameters())
    peaks = {}
    for path in ("sharded", "full"):
        mp.spawn(_peak_worker, args=(free_port(), str(tiny_model_dir), str(big_model_dir),
                                     path, str(tmp_path)), nprocs=WORLD)
        peaks[path] = [json.loads(Path(tmp_path, f"{path}{r}.json").read_text())
                       for r in range(WORLD)]
    mb = 2 ** 20
    report = (f"P = {params_bytes // 4:,} params ({params_bytes / mb:.0f} MB fp32), largest "
              f"tensor {largest_bytes / mb:.0f} MB, {WORLD} ranks; peak RSS increase per rank: "
              f"sharded {[round(p / mb) for p in peaks['sharded']]} MB, "
              f"full {[round(p / mb) for p in peaks['full']]} MB")
    print(report)
    bound = params_bytes / WORLD + largest_bytes + 32 * mb
    assert max(peaks["sharded"]) < bound, report
    assert max(peaks["sharded"]) < min(peaks["full"]) / 2, report
