"""The warm-start's SFT loss: completion tokens that copy a prompt word weigh
`content_weight`, and the loss is the weighted mean of the per-token cross-entropy."""

import torch

from vsdpo.tasks import DOMAINS, generate_tasks
from vsdpo.tasks.programs import solve, styles
from vsdpo.warmstart.corpus import Example
from vsdpo.warmstart.sft import IGNORE, batch_loss, build_model, collate, encode
from vsdpo.warmstart.tokenizer import EOS, format_prompt, train_tokenizer

TASKS = generate_tasks(DOMAINS, 30, seed=0)
TOKENIZER = train_tokenizer([format_prompt(t.prompt) + solve(t, s) + EOS
                             for t in TASKS for s in styles(t.domain)], 500)


def test_copied_words_weigh_content_weight_and_template_tokens_one():
    task = TASKS[0]  # a chart: labels and the title are copied from the prompt
    (e,) = encode([Example(format_prompt(task.prompt), solve(task, "plain"))], TOKENIZER,
                  max_len=512, content_weight=5.0)
    tokens = TOKENIZER.convert_ids_to_tokens(e.ids[e.prompt_len:])
    assert len(e.weights) == len(tokens)
    heavy = {t for t, w in zip(tokens, e.weights) if w == 5.0}
    label = task.prompt.split("bars: ")[1].split("=")[0]
    assert {t for t in TOKENIZER.tokenize(label) if len(t) > 2} <= heavy
    assert not heavy & {"import", "matplotlib", "subplots", "figsize", "<|eos|>"}
    assert set(e.weights) == {1.0, 5.0}


def test_the_loss_is_the_weighted_mean_of_token_cross_entropies():
    examples = [Example(format_prompt(t.prompt), solve(t, styles(t.domain)[0])) for t in TASKS[:3]]
    encoded = encode(examples, TOKENIZER, max_len=512, content_weight=3.0)
    model = build_model(TOKENIZER, 32, 1, 2, 64, 512, seed=0).double()
    loss = batch_loss(model, [encoded[:2], encoded[2:]], TOKENIZER.pad_token_id)
    total, weight = 0.0, 0.0
    for e in encoded:  # one sequence at a time, no padding, float64
        batch = collate([e], TOKENIZER.pad_token_id)
        logp_TV = torch.log_softmax(model(input_ids=batch["input_ids"]).logits[0, :-1], -1)
        labels_T, weights_T = batch["labels"][0, 1:], batch["weights"][0, 1:]
        keep = labels_T != IGNORE
        nll_T = -logp_TV[keep].gather(-1, labels_T[keep, None])[:, 0]
        total, weight = total + (nll_T * weights_T[keep]).sum(), weight + weights_T[keep].sum()
    torch.testing.assert_close(loss, total / weight)
