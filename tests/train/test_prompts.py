"""Prompts for the policy's tokenizer and fenced completions in the real render-and-score
stage: the tiny tokenizer keeps its warm-start markers; a tokenizer with a chat template (a
Qwen-style one built here: no model hub is reachable) gets its template, and rollouts end at
its `<|im_end|>`; credit on a fenced chart lands on the guilty statement's tokens."""

import asyncio

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from handmade import CONTEXT, LetterScorer, tiny_config
from vsdpo.apps.evaluate import evaluate
from vsdpo.model.tiny import CORPUS
from vsdpo.render import RenderConfig, RenderPool
from vsdpo.render.chart import ChartConfig
from vsdpo.model.inputs import TextInputs
from vsdpo.rollout import Completion, HFGenerator, SamplingParams
from vsdpo.tasks import Task
from vsdpo.train.batch import token_offsets
from vsdpo.train.prompts import student_prompt, teacher_prompt
from vsdpo.train.score import RenderScorer
from vsdpo.train.trainer import Trainer
from vsdpo.warmstart.tokenizer import train_tokenizer

# Qwen2.5-instruct's layout: a default system turn, `<|im_start|>role\n...<|im_end|>\n` turns
CHAT_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}{% set system = messages[0].content %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = 'You are a helpful assistant.' %}"
    "{% endif %}{{ '<|im_start|>system\\n' + system + '<|im_end|>\\n' }}"
    "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"

CHART = ('import matplotlib.pyplot as plt\n'
         'names = [f"An extraordinarily long category name {i}" for i in range(8)]\n'
         "fig, ax = plt.subplots(figsize=(6, 4))\n"
         "ax.bar(range(8), range(1, 9))\nax.set_xticks(range(8))\nax.set_xticklabels(names)\n")
GUILTY = "ax.set_xticklabels(names)"


def chat_tokenizer():
    """The project's byte-level BPE plus Qwen's chat markers, `<|im_end|>` as end of sequence."""
    tok = train_tokenizer(CORPUS * 4, vocab_size=320)
    tok.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                            "additional_special_tokens": ["<|im_start|>"]})
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    """A Llama whose every next-token distribution is the same: `<|im_end|>` with p ≈ 0.3.
    Blocks write nothing (o_proj, down_proj zero) and all embeddings are equal, so the last
    hidden state is one vector u; only `<|im_end|>`'s lm_head row is non-zero."""
    tok = chat_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         tie_word_embeddings=False, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.randn(config.hidden_size))
        u = model.model.norm(model.model.embed_tokens.weight[:1])[0]
        model.lm_head.weight.zero_()
        logit = torch.log(torch.tensor(0.3 / 0.7 * (len(tok) - 1)))  # p(<|im_end|>) = 0.3
        model.lm_head.weight[tok.eos_token_id] = logit * u / u.dot(u)
    path = tmp_path_factory.mktemp("chat") / "model"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_the_tiny_tokenizer_keeps_the_warm_start_markers_byte_for_byte(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert student_prompt(tok, "a bar chart") == "<|bos|><|user|>a bar chart<|assistant|>"
    assert teacher_prompt(tok, "ctx\nfix it") == "<|bos|><|feedback|>ctx\nfix it<|assistant|>"


def test_a_chat_template_tokenizer_gets_one_user_turn_and_the_generation_prompt(chat_model_dir):
    tok = AutoTokenizer.from_pretrained(chat_model_dir)
    for fmt, content in [(student_prompt, "a bar chart"), (teacher_prompt, "ctx\nfix it")]:
        expected = tok.apply_chat_template([{"role": "user", "content": content}],
                                           add_generation_prompt=True, tokenize=False)
        assert fmt(tok, content) == expected
        assert expected == f"{SYSTEM}<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"


def test_rollouts_of_a_chat_template_model_end_at_im_end(chat_model_dir):
    tok = AutoTokenizer.from_pretrained(chat_model_dir)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id == im_end
    generator = HFGenerator(LlamaForCausalLM.from_pretrained(chat_model_dir), TextInputs(tok))
    torch.manual_seed(0)
    completions = generator.generate([student_prompt(tok, "a bar chart")], 16,
                                     SamplingParams(temperature=1.0, max_new_tokens=8))
    finished = [c for c in completions if c.finished]
    assert finished and any(len(c.token_ids) > 1 for c in finished)
    assert len(finished) < len(completions)  # some ran to max_new_tokens: p(<|im_end|>) < 1
    for c in completions:
        body = c.token_ids[:-1] if c.finished else c.token_ids
        assert im_end not in body and (not c.finished or c.token_ids[-1] == im_end)
        assert "<|im_end|>" not in c.text and (c.finished or len(c.token_ids) == 8)


@pytest.fixture
def sampled_prompts(monkeypatch) -> list[str]:
    """Every prompt `HFGenerator.generate` is called with (the real method still runs)."""
    seen, generate = [], HFGenerator.generate

    def spy(self, prompts, *args, **kwargs):
        seen.extend(prompts)
        return generate(self, prompts, *args, **kwargs)
    monkeypatch.setattr(HFGenerator, "generate", spy)
    return seen


def is_chat_prompt(prompt: str) -> bool:
    return prompt.startswith(SYSTEM + "<|im_start|>user\n") and prompt.endswith(
        "<|im_end|>\n<|im_start|>assistant\n")


def test_the_trainer_prompts_student_and_teacher_through_the_chat_template(
        chat_model_dir, tmp_path, process_group, sampled_prompts):
    cfg = tiny_config(chat_model_dir, tmp_path / "run", "rollout.max_new_tokens=4")
    trainer = Trainer(cfg, scorer=LetterScorer(cfg.feedback.alpha))
    batch = trainer.request(0)()
    tasks_N, completions, offsets = batch.tasks_N, batch.completions, batch.offsets
    samples = trainer.make_samples(tasks_N, completions,
                                   trainer.render_and_score(tasks_N, completions, offsets),
                                   batch.task_images, 0)
    trainer.close()
    assert sampled_prompts and all(is_chat_prompt(p) for p in sampled_prompts)
    tok = trainer.tokenizer
    encode = lambda text: tok(text, add_special_tokens=False).input_ids  # noqa: E731
    for task, s in zip(tasks_N, samples):
        assert s.prompt_ids == encode(student_prompt(tok, task.prompt))
        assert s.teacher_ids == encode(teacher_prompt(tok, CONTEXT))


def test_evaluation_samples_through_the_chat_template(chat_model_dir, tmp_path, sampled_prompts):
    cfg = tiny_config(chat_model_dir, tmp_path / "run", "rollout.max_new_tokens=4",
                      "tasks.num_eval=2", "render.num_browsers=1")
    metrics = evaluate(cfg)
    assert len(sampled_prompts) == 2 and all(is_chat_prompt(p) for p in sampled_prompts)
    assert 0.0 <= metrics["exec_rate"] <= 1.0


def test_credit_on_a_fenced_chart_lands_exactly_on_the_guilty_statement():
    tok = chat_tokenizer()
    text = f"Here is the chart:\n```python\n{CHART}```\nLong names make it informative."
    ids = tok(text, add_special_tokens=False).input_ids + [tok.eos_token_id]
    offsets = token_offsets(tok, ids, text)
    completion = Completion(0, ids, text, torch.zeros(len(ids)), True)
    task = Task("fenced", "chart", "A bar chart of eight long category names.")

    async def score():
        config = RenderConfig(num_browsers=1, chart=ChartConfig(workers=1, timeout_s=60))
        async with RenderPool(config) as pool:
            return await RenderScorer(pool, alpha=3.0, sibling=False).score(
                [task], [completion], [offsets], 1)
    (scored,) = asyncio.run(score())
    assert scored.ok and "overlap" in scored.defect_kinds
    g0 = text.index(GUILTY)
    guilty = [s < g0 + len(GUILTY) and g0 < e for s, e in offsets]
    assert sum(guilty) >= 3 and scored.credit_weight_T.shape == (len(ids),)
    unblamed = scored.credit_weight_T.min()  # weights have mean 1 per sequence: unblamed ones < 1
    assert [w > unblamed for w in scored.credit_weight_T.tolist()] == guilty
    assert "line 6: ax.set_xticklabels(names)" in scored.context  # lines of the code, not the text
