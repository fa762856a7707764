"""The warm-start's SFT: completion tokens that copy a prompt word weigh `content_weight`,
the loss is the weighted mean of the per-token cross-entropy, and the copy stage's sequences
are a random span copied, added to every corpus batch."""

import torch

from vsdpo.tasks import DOMAINS, generate_tasks
from vsdpo.tasks.programs import solve, styles
from vsdpo.warmstart import sft
from vsdpo.warmstart.corpus import Example
from vsdpo.warmstart.sft import IGNORE, batch_loss, build_model, collate, copy_sequences, encode
from vsdpo.warmstart.tokenizer import (ASSISTANT, BOS, EOS, USER, format_prompt,
                                      format_teacher_prompt, train_tokenizer)

TASKS = generate_tasks(DOMAINS, 30, seed=0)
TOKENIZER = train_tokenizer([format_prompt(t.prompt) + solve(t, s) + EOS
                             for t in TASKS for s in styles(t.domain)], 500)


def test_copied_words_weigh_content_weight_and_template_tokens_one():
    task = TASKS[0]  # a chart: labels and the title are copied from the prompt
    (e,) = encode([Example(format_prompt(task.prompt), solve(task, "flat"), task.prompt)],
                  TOKENIZER, max_len=512, content_weight=5.0)
    tokens = TOKENIZER.convert_ids_to_tokens(e.ids[e.prompt_len:])
    assert len(e.weights) == len(tokens)
    heavy = {t for t, w in zip(tokens, e.weights) if w == 5.0}
    label = task.prompt.split("panel: ")[1].split("=")[0]
    assert {t for t in TOKENIZER.tokenize(label) if len(t) > 2} <= heavy
    assert not heavy & {"import", "matplotlib", "subplots", "figsize", "<|eos|>"}
    assert set(e.weights) == {1.0, 5.0}


def test_a_teacher_example_weighs_only_the_task_prompts_words():
    """The teacher prompt shows the attempt, whose words are all in the program: only the
    words of the task prompt are content."""
    task = TASKS[0]
    code = solve(task, "flat")
    (e,) = encode([Example(format_teacher_prompt(f"{task.prompt}\n\n{code}"), code,
                           task.prompt)], TOKENIZER, max_len=1024, content_weight=5.0)
    tokens = TOKENIZER.convert_ids_to_tokens(e.ids[e.prompt_len:])
    heavy = {t for t, w in zip(tokens, e.weights) if w == 5.0}
    label = task.prompt.split("panel: ")[1].split("=")[0]
    assert {t for t in TOKENIZER.tokenize(label) if len(t) > 2} <= heavy
    assert not heavy & {"import", "matplotlib", "subplots", "figsize", "<|eos|>"}


def test_the_loss_is_the_weighted_mean_of_token_cross_entropies():
    examples = [Example(format_prompt(t.prompt), solve(t, styles(t.domain)[0]), t.prompt)
                for t in TASKS[:3]]
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


def test_a_copy_sequence_completes_with_its_own_prompt_words_then_eos():
    sequences = copy_sequences(TOKENIZER, 50, seed=0)
    bos, user, assistant = TOKENIZER.convert_tokens_to_ids([BOS, USER, ASSISTANT])
    lengths = set()
    for e in sequences:
        prompt, completion = e.ids[:e.prompt_len], e.ids[e.prompt_len:]
        span = prompt[2:-1]
        assert prompt[:2] == [bos, user] and prompt[-1] == assistant
        assert completion == span + [TOKENIZER.eos_token_id] and e.weights == [1.0] * len(completion)
        assert all(t.isalnum() for t in TOKENIZER.convert_ids_to_tokens(span))
        lengths.add(len(span))
    assert min(lengths) >= 5 and max(lengths) <= 20 and len(lengths) > 5
    assert copy_sequences(TOKENIZER, 50, seed=0) == sequences != copy_sequences(TOKENIZER, 50, seed=1)


def test_every_corpus_batch_holds_copy_per_batch_copy_sequences(monkeypatch):
    student = encode([Example(format_prompt(t.prompt), solve(t, styles(t.domain)[0]), t.prompt)
                      for t in TASKS[:6]], TOKENIZER, max_len=512)
    copies = copy_sequences(TOKENIZER, 20, seed=0)
    seen = []

    def spy(model, parts, pad_id):
        seen.append([len(part) for part in parts])
        assert all(e in copies for e in parts[-1]) and not any(e in copies for e in parts[0])
        return batch_loss(model, parts, pad_id)
    monkeypatch.setattr(sft, "batch_loss", spy)
    model = build_model(TOKENIZER, 32, 1, 2, 64, 512, seed=0)
    losses = sft.train(model, student, [], pad_id=TOKENIZER.pad_token_id, steps=3, batch_size=4,
                       feedback_fraction=0.0, lr=1e-3, warmup_steps=1, seed=0,
                       log=lambda _: None, copy=copies, copy_per_batch=5)
    assert seen == [[4, 0, 5]] * 3 and len(losses) == 3
