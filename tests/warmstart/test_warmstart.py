"""`warmstart` end to end at a toy size: the real render pool and teacher context build the
corpus, and the result is a transformers directory the trainer can load and sample from."""

import json

import pytest
import torch
from sync_pool import SyncPool
from transformers import AutoModelForCausalLM, AutoTokenizer

from vsdpo.cli import main
from vsdpo.tasks import generate_tasks
from vsdpo.warmstart import WarmstartConfig, cache_key, format_prompt, warmstart
from vsdpo.warmstart import build
from vsdpo.warmstart.build import code_of
from vsdpo.warmstart.induction import ROPE_THETA, code_dims
from vsdpo.warmstart.measure import CONTEXTS, gate, measure

TOY = WarmstartConfig(num_student_examples=40, num_feedback_examples=6, vocab_size=400,
                      hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                      copy_steps=2, copy_batch_size=4, steps=3, batch_size=4, warmup_steps=1,
                      induction_head=False)  # one layer: the head takes two


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return warmstart(tmp_path_factory.mktemp("ws"), TOY, log=lambda _: None)


def test_the_directory_loads_with_auto_classes_and_generates(model_dir):
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt = format_prompt(generate_tasks("chart", 1, split="eval")[0].prompt)
    enc = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**enc, do_sample=True, max_new_tokens=8,
                         pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > enc.input_ids.shape[1]
    assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    assert model.config.vocab_size == len(tokenizer) <= TOY.vocab_size
    record = json.loads((model_dir / "warmstart.json").read_text())
    assert len(record["losses"]) == TOY.steps and record["config"]["hidden_size"] == 32
    assert len(record["copy_losses"]) == TOY.copy_steps


def test_the_same_config_returns_the_cached_directory_without_rebuilding(model_dir):
    def no_render(artifacts):
        raise AssertionError("a cached warm-start must not render")
    assert warmstart(model_dir.parent, TOY, render_fn=no_render, log=lambda _: None) == model_dir


def test_any_config_change_gives_another_cache_key():
    assert cache_key(TOY) == cache_key(WarmstartConfig(**vars(TOY)))
    assert cache_key(TOY) != cache_key(WarmstartConfig(**{**vars(TOY), "steps": 4}))


def test_the_key_ignores_docstrings_and_comments_but_not_code(tmp_path):
    source = tmp_path / "m.py"
    versions = ['def f(x):\n    """Twice x."""\n    return 2 * x  # doubled\n',
                '"""A module."""\n\ndef f(x):\n    """x, doubled."""\n\n    return 2 * x\n',
                'def f(x):\n    return 2 * x\n',
                'def f(x):\n    """Twice x."""\n    return 3 * x\n']
    keys = []
    for text in versions:
        source.write_text(text)
        keys.append(code_of(source))
    assert keys[0] == keys[1] == keys[2] != keys[3]


def test_the_key_hashes_the_training_code_but_not_the_gates(monkeypatch):
    key, real = cache_key(TOY), build.code_of
    for name, changes in (("measure.py", False), ("sft.py", True), ("chart_sandbox.py", True)):
        monkeypatch.setattr(build, "code_of",
                            lambda path, name=name: b"edited" if path.name == name else real(path))
        assert (cache_key(TOY) != key) == changes, name


def test_measure_reports_the_student_and_each_arms_teacher_and_the_gate(model_dir):
    """Its two render calls go through one real pool (a pool start each would cost ~5 s)."""
    torch.manual_seed(0)
    pool = SyncPool()
    try:
        report = measure(model_dir, num_tasks=3, samples=2, max_new_tokens=16,
                         render_fn=pool.render)
    finally:
        pool.close()
    assert report["samples"] == 2
    for role in ("student", *CONTEXTS):
        assert 0.0 <= report[role]["defect_rate"] <= report[role]["exec_rate"] <= 1.0
        assert 0.0 <= report[role]["complete_rate"] <= report[role]["fidelity"] <= 1.0
        assert "fidelity" in report["risky"][role] and "fidelity" in report["chart"][role]
    assert report["gate"] == gate(report) and set(report["gate"]) == set(CONTEXTS)


def test_the_gate_asks_half_the_defects_and_the_students_content_less_0_01():
    rates = lambda d, f: {"defect_rate": d, "fidelity": f}  # noqa: E731
    report = {"student": rates(0.4, 0.9), "traced": rates(0.2, 0.89),
              "plain": rates(0.21, 0.95), "reference": rates(0.1, 0.88)}
    assert gate(report) == {"traced": True, "plain": False, "reference": False}


@pytest.mark.parametrize("field, value", [
    ("steps", 0), ("copy_steps", -1), ("copy_batch_size", 0), ("copy_per_batch", -1),
    ("prone_fraction", 1.5), ("num_heads", 3), ("lr", 0.0), ("content_weight", 0.5),
])
def test_a_bad_config_raises_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        WarmstartConfig(**{**vars(TOY), field: value})


def test_the_command_prints_only_the_directory_on_stdout(model_dir, capsys):
    """Progress goes to stderr, so `$(vsdpo warmstart)` is the path (here: the cached one)."""
    toy = [f"--set={k}={str(v).lower() if isinstance(v, bool) else v}"
           for k, v in vars(TOY).items()]
    assert main(["warmstart", "--out", str(model_dir.parent), *toy]) == 0
    out, err = capsys.readouterr()
    assert out == f"{model_dir}\n" and "cached model" in err


def test_induction_head_builds_a_model_that_starts_from_the_written_in_circuit(tmp_path):
    """`induction_head=True`: the saved config has the head's `rope_theta`, and no SFT step
    (steps 0 is refused, so the fewest) wipes the code readout from the output head."""
    config = WarmstartConfig(**{**vars(TOY), "num_layers": 2, "num_heads": 1,
                                "induction_head": True, "copy_steps": 0, "steps": 1})
    path = warmstart(tmp_path, config, log=lambda _: None)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.rope_parameters["rope_theta"] == ROPE_THETA
    K = code_dims(TOY.hidden_size, TOY.hidden_size)
    readout_VK, rest_VH = model.lm_head.weight[:, 2 * K:3 * K], model.lm_head.weight[:, 3 * K:]
    assert readout_VK.abs().mean() > 10 * rest_VH.abs().mean()
