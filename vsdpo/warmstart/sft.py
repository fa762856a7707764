"""Supervised fine-tuning of the embedded tiny decoder on the warm-start corpus.

The model is a transformers `LlamaForCausalLM` built from a config (nothing downloaded),
with untied input and output embeddings so the trainer can use `model.lm_head.weight` as
the loss's own matrix. Llama rather than Qwen2: for a `qwen2` config, transformers 5's
`AutoTokenizer` swaps in `Qwen2Tokenizer`, which replaces our pre-tokenizer. The loss
covers completion tokens and the end-of-sequence token only; prompt and padding positions
are labelled -100. Completion tokens that copy a word of the task prompt (a title, label or
bullet word; not a word of the attempt or sibling a teacher prompt also shows) weigh
`content_weight` times a template token: the templates
are learnt within a few dozen steps, and without the weight their gradient drowns the
weaker one that builds the copying circuit. Each batch mixes
student and feedback examples in a fixed proportion, so the feedback-reading skill is learnt
at every step; the two parts are padded separately since feedback sequences are about twice
as long.

Copying needs an induction head (attend to the token after an earlier copy of the current
one), and this model does not form one from the corpus within the build budget; it forms one
within a few hundred steps on sequences that are nothing but a copy of random tokens, and then
learns the corpus's copying. So
`copy_sequences` are trained first, and some are added to every corpus batch after: the word
pieces that held-out titles split into (`ous`, `ics`, `port`) are never a target in the
corpus, whose own words are whole tokens, and without the copies their output logits sink
until the head's copy signal cannot lift them. docs/tasks.md ("The warm-start") has the
two stages and what they reach.

Shapes: B batch, T padded sequence length.
"""

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from vsdpo.warmstart.corpus import Example
from vsdpo.warmstart.tokenizer import ASSISTANT, BOS, USER

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    ids: list[int]  # prompt, completion, end-of-sequence
    prompt_len: int
    weights: list[float]  # per completion token: content_weight on a copied word, else 1


def encode(examples: list[Example], tokenizer: PreTrainedTokenizerFast, max_len: int,
           content_weight: float = 1.0) -> list[Encoded]:
    """Token ids per example; an example longer than `max_len` loses its prompt's start."""
    prompts = tokenizer([e.prompt for e in examples]).input_ids
    completions = tokenizer([e.completion for e in examples]).input_ids
    contents = tokenizer([e.task_prompt for e in examples]).input_ids
    is_word = [t.isalnum() for t in tokenizer.convert_ids_to_tokens(
        list(range(len(tokenizer))))]
    out = []
    for p, c, content in zip(prompts, completions, contents):
        c = c + [tokenizer.eos_token_id]
        if len(c) >= max_len:
            raise ValueError(f"a completion of {len(c)} tokens does not fit max_len={max_len}; "
                             "raise max_len")
        p = p[-(max_len - len(c)):]
        copied = {t for t in content if is_word[t]}
        out.append(Encoded(p + c, len(p), [content_weight if t in copied else 1.0 for t in c]))
    return out


def copy_sequences(tokenizer: PreTrainedTokenizerFast, num: int, seed: int,
                   min_len: int = 5, max_len: int = 20) -> list[Encoded]:
    """`<|bos|><|user|>w…<|assistant|>w…<|eos|>`: `min_len`–`max_len` random word tokens, then
    the same again; the varying length makes the copy distance vary, so only an induction
    head predicts it."""
    rng = random.Random(f"copy:{seed}")
    words = [i for i, t in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
             if t.isalnum()]
    bos, user, assistant = tokenizer.convert_tokens_to_ids([BOS, USER, ASSISTANT])
    out = []
    for _ in range(num):
        span = rng.choices(words, k=rng.randint(min_len, max_len))
        prompt = [bos, user, *span, assistant]
        out.append(Encoded(prompt + span + [tokenizer.eos_token_id], len(prompt),
                           [1.0] * (len(span) + 1)))
    return out


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids_BT`, `labels_BT` (completion only) and `weights_BT` (0 where
    the label is ignored). No attention mask: under the causal mask no real token sees the
    padding after it, and without an explicit mask SDPA skips the masked triangle."""
    T = max(len(e.ids) for e in batch)
    ids_BT = torch.full((len(batch), T), pad_id, dtype=torch.long)
    labels_BT = torch.full((len(batch), T), IGNORE, dtype=torch.long)
    weights_BT = torch.zeros((len(batch), T))
    for b, e in enumerate(batch):
        ids_BT[b, :len(e.ids)] = torch.tensor(e.ids)
        labels_BT[b, e.prompt_len:len(e.ids)] = torch.tensor(e.ids[e.prompt_len:])
        weights_BT[b, e.prompt_len:len(e.ids)] = torch.tensor(e.weights)
    return {"input_ids": ids_BT, "labels": labels_BT, "weights": weights_BT}


def build_model(tokenizer: PreTrainedTokenizerFast, hidden_size: int, num_layers: int,
                num_heads: int, intermediate_size: int, max_len: int,
                seed: int, **llama_config) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=num_heads, max_position_embeddings=max(2048, max_len),
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **llama_config)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def lr_at(step: int, steps: int, warmup: int, lr: float) -> float:
    """Linear warm-up, then cosine decay to a tenth of `lr`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_loss(model: LlamaForCausalLM, parts: list[list[Encoded]], pad_id: int) -> torch.Tensor:
    """Weighted mean loss over the completion tokens of all parts; each part is padded on its
    own (student and feedback sequences differ in length by ~2x)."""
    total, weight = 0.0, 0.0
    for part in parts:
        if not part:
            continue
        batch = collate(part, pad_id)
        logits_BTV = model(input_ids=batch["input_ids"]).logits
        nll_BT = torch.nn.functional.cross_entropy(
            logits_BTV[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(),
            ignore_index=IGNORE, reduction="none")
        weights_BT = batch["weights"][:, 1:].flatten()
        total = total + (nll_BT * weights_BT).sum()
        weight += float(weights_BT.sum())
    return total / weight


def train(model: LlamaForCausalLM, student: list[Encoded], feedback: list[Encoded], *,
          pad_id: int, steps: int, batch_size: int, feedback_fraction: float, lr: float,
          warmup_steps: int, seed: int, log: Callable[[str], None] = print,
          stage: str = "sft", decay: bool = True, copy: list[Encoded] = (),
          copy_per_batch: int = 0) -> list[float]:
    """AdamW over `steps` mixed batches, each with `copy_per_batch` of `copy` added; returns
    the loss of every step."""
    rng = random.Random(f"sft:{seed}")
    num_feedback = round(batch_size * feedback_fraction) if feedback else 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01,
                                  betas=(0.9, 0.98))
    model.train()
    losses, start = [], time.perf_counter()
    for step in range(steps):
        parts = [rng.choices(student, k=batch_size - num_feedback),
                 rng.choices(feedback, k=num_feedback),
                 rng.choices(copy, k=copy_per_batch) if copy else []]
        for group in optimizer.param_groups:
            group["lr"] = (lr_at(step, steps, warmup_steps, lr) if decay
                           else lr * min(1.0, (step + 1) / max(1, warmup_steps)))
        loss = batch_loss(model, parts, pad_id)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 25 == 0 or step == steps - 1:
            log(f"{stage} step {step + 1}/{steps} loss {loss.item():.3f} "
                f"({time.perf_counter() - start:.0f}s)")
    model.eval()
    return losses
