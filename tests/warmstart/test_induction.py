"""The induction head the warm-start writes in: before any training, the model copies a span
of words from hundreds of tokens back, which a fresh model does not."""

import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from vsdpo.tasks import DOMAINS, generate_tasks
from vsdpo.tasks.programs import solve, styles
from vsdpo.warmstart import WarmstartConfig
from vsdpo.warmstart.induction import ROPE_THETA, install_induction_head
from vsdpo.warmstart.sft import build_model
from vsdpo.warmstart.tokenizer import ASSISTANT, BOS, EOS, USER, format_prompt, train_tokenizer

TOKENIZER = train_tokenizer([format_prompt(t.prompt) + solve(t, s) + EOS
                             for t in generate_tasks(DOMAINS, 60, seed=0)
                             for s in styles(t.domain)], 1024)
WORDS = [i for i, t in enumerate(TOKENIZER.convert_ids_to_tokens(list(range(len(TOKENIZER)))))
         if t.isalnum()]


@torch.no_grad()
def copy_accuracy(model, span_len: int, gap: int, trials: int = 6) -> float:
    """Share of a span's words predicted (argmax) when the span comes again `gap` words later."""
    rng = random.Random(f"{span_len}:{gap}")
    bos, user, assistant = TOKENIZER.convert_tokens_to_ids([BOS, USER, ASSISTANT])
    hits = 0
    for _ in range(trials):
        span = rng.sample(WORDS, span_len)
        filler = rng.choices([w for w in WORDS if w not in span], k=gap)
        ids = [bos, user, *span, *filler, assistant, *span]
        logits_TV = model(input_ids=torch.tensor([ids])).logits[0]
        start = len(ids) - span_len
        hits += (logits_TV[start - 1:-1].argmax(-1) == torch.tensor(span)).sum().item()
    return hits / (trials * span_len)


def default_model():
    c = WarmstartConfig()
    return build_model(TOKENIZER, c.hidden_size, c.num_layers, c.num_heads, c.intermediate_size,
                       c.max_len, seed=0, rope_theta=ROPE_THETA).eval()


@pytest.mark.parametrize("gap", [0, 300, 900])
def test_the_written_in_head_copies_from_far_back_before_training(gap):
    model = default_model()
    assert copy_accuracy(model, 40, gap) < 0.05  # a fresh model guesses
    install_induction_head(model, WarmstartConfig().max_len, seed=0)
    assert copy_accuracy(model, 40, gap) >= 0.7  # 0.92, 0.84, 0.74 measured


def test_it_survives_a_save_and_load(tmp_path):
    model = default_model()
    install_induction_head(model, WarmstartConfig().max_len, seed=0)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.config.rope_parameters["rope_theta"] == model.config.rope_parameters["rope_theta"]
    assert copy_accuracy(loaded, 40, 300) >= 0.7


def test_a_model_it_does_not_fit_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="num_layers must be >= 2"):
        WarmstartConfig(num_layers=1, induction_head=True)
    with pytest.raises(ValueError, match="fewer, wider heads"):
        WarmstartConfig(hidden_size=128, num_heads=8, induction_head=True)
    with pytest.raises(ValueError, match="two layers"):
        install_induction_head(build_model(TOKENIZER, 32, 1, 1, 64, 512, seed=0,
                                           rope_theta=ROPE_THETA), 512, seed=0)
