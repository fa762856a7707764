"""From scored completions to padded tensors: samples, micro-batches, token offsets.

Each sample is one completion seen twice: by the student after its prompt and by the
teacher after the teacher context. Both rows are right-padded; the hidden state at
position `P + t − 1` predicts completion token t, so `*_rows_N` index those positions in
the flattened `[B·L]` hidden states (the completion's last token is not in the row: nothing
reads its hidden state). Micro-batches are filled greedily, in order, up to a
budget of padded tokens (student + teacher rows, image tokens included). A vision-language
policy's rows carry their images; a micro-batch's pixels are its rows' images in row order.

Legend: B samples in a micro-batch, L padded length, N completion tokens, H hidden size.
"""

from dataclasses import dataclass

import torch

from vsdpo.model.images import Images


@dataclass
class Sample:
    prompt_ids: list[int]
    teacher_ids: list[int]        # the tokenized teacher context
    completion_ids: list[int]
    engine_logprobs: torch.Tensor  # [T] the rollout engine's, of the tokens it sampled
    credit_weight: torch.Tensor    # [T] per-token weight on the divergence, mean 1
    advantage: float
    old_logprobs: torch.Tensor | None = None  # [T] the trainer's (`recompute.py`); None: the
                                              # engine's are the ratio's reference
    is_weight: torch.Tensor | None = None     # [T] truncated importance weight on the PG term
    prompt_images: Images | None = None   # a vision-language policy's: the task's image
    teacher_images: Images | None = None  # the task's image and the student's render
    policy_version: int = 0               # optimizer steps of the weights that sampled it
    teacher_hidden: torch.Tensor | None = None  # [T, H] read ahead (`rollout.stream`); None:
                                                # the step's teacher forward reads them


@dataclass
class MicroBatch:
    student_ids_BL: torch.Tensor
    student_mask_BL: torch.Tensor
    student_rows_N: torch.Tensor
    teacher_ids_BL: torch.Tensor
    teacher_mask_BL: torch.Tensor
    teacher_rows_N: torch.Tensor
    target_N: torch.Tensor
    credit_weight_N: torch.Tensor
    adv_N: torch.Tensor           # the group advantage of each token's sample
    is_weight_N: torch.Tensor     # the truncated importance weight on the PG term (1: none)
    old_logp_N: torch.Tensor      # the ratio's reference: the trainer's, else the engine's
    engine_logp_N: torch.Tensor
    mask_N: torch.Tensor
    student_images: Images | None = None  # every row's images, in row order
    teacher_images: Images | None = None
    teacher_hidden_NH: torch.Tensor | None = None  # the samples' `teacher_hidden`, if read ahead

    @property
    def num_tokens(self) -> int:
        return int(self.mask_N.sum())


def split_micro_batches(samples: list[Sample], budget: int, pad_id: int) -> list[MicroBatch]:
    """Greedy, order-preserving packing; a sample longer than the budget goes alone."""
    groups, current = [], []
    for s in samples:
        trial = current + [s]
        cost = len(trial) * (max(_student_len(x) for x in trial) + max(_teacher_len(x) for x in trial))
        if current and cost > budget:
            groups.append(current)
            trial = [s]
        current = trial
    if current:
        groups.append(current)
    return [collate(g, pad_id) for g in groups]


def empty_micro_batch(pad_id: int) -> MicroBatch:
    """One masked-out token: lets a rank with fewer micro-batches join the collectives."""
    s = Sample([pad_id], [pad_id], [pad_id], torch.zeros(1), torch.ones(1), 0.0)
    mb = collate([s], pad_id)
    mb.mask_N.zero_()
    return mb


def collate(samples: list[Sample], pad_id: int) -> MicroBatch:
    s_ids, s_mask, s_rows = _rows([x.prompt_ids for x in samples], samples, pad_id)
    t_ids, t_mask, t_rows = _rows([x.teacher_ids for x in samples], samples, pad_id)
    target = [torch.tensor(x.completion_ids) for x in samples]
    adv = [torch.full((len(x.completion_ids),), float(x.advantage)) for x in samples]
    is_weight = [torch.ones(len(x.completion_ids)) if x.is_weight is None else x.is_weight
                 for x in samples]
    old = [x.engine_logprobs if x.old_logprobs is None else x.old_logprobs for x in samples]
    return MicroBatch(
        s_ids, s_mask, s_rows, t_ids, t_mask, t_rows, target_N=torch.cat(target),
        credit_weight_N=torch.cat([x.credit_weight for x in samples]).float(),
        adv_N=torch.cat(adv), is_weight_N=torch.cat(is_weight).float(),
        old_logp_N=torch.cat(old).float(),
        engine_logp_N=torch.cat([x.engine_logprobs for x in samples]).float(),
        mask_N=torch.ones(sum(len(t) for t in target)),
        student_images=Images.cat([x.prompt_images for x in samples]),
        teacher_images=Images.cat([x.teacher_images for x in samples]),
        teacher_hidden_NH=None if samples[0].teacher_hidden is None
        else torch.cat([x.teacher_hidden for x in samples]))


def _rows(prefixes: list[list[int]], samples: list[Sample], pad_id: int):
    """Right-padded `[prefix ; completion without its last token]` rows and the positions
    predicting the completion. The last token is a target only: no position reads it."""
    seqs = [p + x.completion_ids[:-1] for p, x in zip(prefixes, samples)]
    length = max(len(s) for s in seqs)
    ids_BL = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask_BL = torch.zeros((len(seqs), length), dtype=torch.long)
    rows = []
    for b, (p, s) in enumerate(zip(prefixes, seqs)):
        ids_BL[b, :len(s)] = torch.tensor(s)
        mask_BL[b, :len(s)] = 1
        rows.append(b * length + torch.arange(len(p) - 1, len(s)))
    return ids_BL, mask_BL, torch.cat(rows)


def _student_len(s: Sample) -> int:
    return len(s.prompt_ids) + len(s.completion_ids)


def _teacher_len(s: Sample) -> int:
    return len(s.teacher_ids) + len(s.completion_ids)


def token_offsets(tokenizer, token_ids: list[int], text: str) -> list[tuple[int, int]]:
    """`(start, end)` character offsets of each completion token in `text`.

    Fast path: re-encode the text and use the tokenizer's offsets when it yields the same
    ids. A sampled sequence need not be the canonical encoding, so otherwise each token ends
    where the decoded prefix through it ends (`decoded_ends`). Special tokens (end of
    sequence) get an empty span at the end.
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    special = set(tokenizer.all_special_ids)
    plain = [t for t in token_ids if t not in special]
    if enc.input_ids == plain:
        spans = iter(enc.offset_mapping)
        return [(len(text), len(text)) if t in special else tuple(next(spans)) for t in token_ids]
    offsets, prev = [], 0
    for end in decoded_ends(tokenizer, token_ids):
        offsets.append((prev, max(prev, end)))
        prev = max(prev, end)
    return offsets


def decoded_ends(tokenizer, token_ids: list[int]) -> list[int]:
    """`len(decode(token_ids[:i + 1]))` for every i, in linear time rather than by decoding
    every prefix: each step decodes only the tokens since the last complete character, after
    the window before them (vLLM's incremental detokenization). Decoding the window's start
    on both sides cancels a SentencePiece word start's dropped space; a partial UTF-8
    character (ending in U+FFFD) keeps the window open until a token completes it."""
    ends, committed, start, read = [], 0, 0, 0
    for i in range(len(token_ids)):
        before = tokenizer.decode(token_ids[start:read], skip_special_tokens=True)
        text = tokenizer.decode(token_ids[start:i + 1], skip_special_tokens=True)
        ends.append(committed + len(text) - len(before))
        if not text.endswith("\ufffd"):
            committed, start, read = ends[-1], read, i + 1
    return ends
