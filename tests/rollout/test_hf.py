"""The transformers rollout engine against a plain forward pass of the same model."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from vsdpo.model.inputs import TextInputs
from vsdpo.rollout import HFGenerator, SamplingParams
from vsdpo.warmstart.tokenizer import format_prompt

PROMPTS = [format_prompt("a bar chart"), format_prompt("a web page with a much longer prompt")]


def _generator(path):
    return HFGenerator(AutoModelForCausalLM.from_pretrained(path),
                       TextInputs(AutoTokenizer.from_pretrained(path)))


def _forward_logprobs(gen, prompt, completion, temperature):
    ids = gen.tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids[0]
    full = torch.cat([ids, torch.tensor(completion.token_ids)])[None]
    with torch.no_grad():
        logits = gen.model(full).logits[0, len(ids) - 1:-1].float()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return logp.gather(1, torch.tensor(completion.token_ids)[:, None])[:, 0]


def test_logprobs_are_those_of_the_sampled_tokens_after_temperature(tiny_model_dir):
    gen = _generator(tiny_model_dir)
    torch.manual_seed(0)
    handed = []  # `on_group` (`rollout.stream`): each prompt's group, once
    completions = gen.generate(PROMPTS, 3, SamplingParams(temperature=0.7, max_new_tokens=16),
                               on_group=lambda i, group: handed.append((i, group)))
    assert [c.prompt_index for c in completions] == [0, 0, 0, 1, 1, 1]
    assert handed == [(0, completions[:3]), (1, completions[3:])]
    for c in completions:
        assert len(c.token_ids) == len(c.logprobs) > 0
        # left padding of the shorter prompt must not change the numbers
        expected = _forward_logprobs(gen, PROMPTS[c.prompt_index], c, 0.7)
        torch.testing.assert_close(c.logprobs, expected, atol=1e-4, rtol=1e-4)


def test_a_completion_stops_after_its_end_of_sequence_token(tiny_model_dir):
    gen = _generator(tiny_model_dir)
    eos, greedy = gen.tokenizer.eos_token_id, SamplingParams(temperature=0, max_new_tokens=8)
    first = gen.generate(PROMPTS[:1], 1, greedy)[0].token_ids[0]
    with torch.no_grad():  # swap head rows: end-of-sequence becomes the greedy first token
        w = gen.model.lm_head.weight
        w[[first, eos]] = w[[eos, first]]
    c = gen.generate(PROMPTS[:1], 1, greedy)[0]
    assert c.token_ids == [eos] and c.finished and c.text == ""


def test_load_weights_changes_what_is_generated(tiny_model_dir):
    gen, other = _generator(tiny_model_dir), AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    greedy = SamplingParams(temperature=0, max_new_tokens=12)
    before = gen.generate(PROMPTS, 1, greedy)
    assert [c.token_ids for c in gen.generate(PROMPTS, 1, greedy)] == [c.token_ids for c in before]
    torch.manual_seed(1)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p))
    gen.load_weights(other.named_parameters())
    after = gen.generate(PROMPTS, 1, greedy)
    assert [c.token_ids for c in after] != [c.token_ids for c in before]
