"""An induction head, written into the fresh tiny decoder before it is trained.

A teacher copies its student's attempt, a sibling or a reference program hundreds of tokens
back; that needs an induction head (attend to the token after an earlier copy of the current
one, and predict it). Gradient descent did not form one within the build budget on 2 cores:
the model learnt to copy by position instead, which fails past the 20-token spans of the copy
stage (docs/tasks.md, "The warm-start"). With `WarmstartConfig.induction_head`, the build
writes the circuit in, and training starts from a model that copies at any distance:

- every token embeds as a ±1 code in dims `[0, K)`, plus a constant in the last dim;
- layer 0, head 0 reads the constant as query and key, with RoPE turning them so that the
  score peaks one position back: it writes the previous token's code into dims `[K, 2K)`;
- layer 1, head 0 matches the current code (query) against the previous code (key) in the RoPE
  pairs that turn by < 0.5 rad over `max_len` (so the match ignores distance), and writes the
  matched position's own code into dims `[2K, 3K)`;
- the output head reads `[2K, 3K)` back as a logit of `COPY_LOGIT` for that token.

Every weight stays trainable; the rest of the embedding and output head start at zero, the
other heads and MLPs at their random init. `ROPE_THETA` is large so that more RoPE pairs are
slow enough for the match (6 of 16 at head dim 32 and `max_len` 1280); 1e8 freed 9, but
the 7 left to carry position were too few for the student (LOG.md).

It is off by default: the best build with it still fails the teacher gate, and making it the
default needs the demo and the ablation re-run (LOG.md, "A written-in induction head").
"""

import math

import torch
from transformers import LlamaForCausalLM

ROPE_THETA = 1e6
CODE_DIMS = 32  # 16 copied as well untrained, but its build wrote worse programs
PREV_SHARPNESS = 5.0  # per-dim query/key size of the previous-token head
MATCH_SHARPNESS = 80.0  # the induction head's score for an exact code match
COPY_LOGIT = 8.0  # the copied token's logit: a strong prior that training can still overrule


def rope_inv_freq(head_dim: int) -> torch.Tensor:
    """Radians per position of each RoPE pair at `ROPE_THETA`, as Llama's default RoPE turns."""
    return 1.0 / (ROPE_THETA ** (torch.arange(head_dim // 2) * 2 / head_dim))


def slow_pairs(head_dim: int, max_len: int) -> list[int]:
    """The RoPE pairs (by index) that turn by < 0.5 rad over `max_len` positions."""
    return [f for f, w in enumerate(rope_inv_freq(head_dim).tolist()) if w * max_len < 0.5]


def check_fits(num_layers: int, head_dim: int, max_len: int) -> list[int]:
    """The head's slow RoPE pairs; raises, naming the config fields, unless the head fits."""
    if num_layers < 2:
        raise ValueError(f"num_layers must be >= 2 with induction_head: the head takes two "
                         f"layers, got {num_layers}")
    slow = slow_pairs(head_dim, max_len)
    if len(slow) < 4:
        raise ValueError(f"with induction_head, hidden_size / num_heads = {head_dim} leaves "
                         f"{len(slow)} RoPE pairs still over max_len {max_len}; the head needs "
                         "4: use fewer, wider heads")
    return slow


def code_dims(hidden_size: int, head_dim: int) -> int:
    """K: `CODE_DIMS`, at most a head's width and a third of the residual (three codes and
    the constant must fit)."""
    return min(CODE_DIMS, head_dim, (hidden_size - 1) // 3)


@torch.no_grad()
def install_induction_head(model: LlamaForCausalLM, max_len: int, seed: int) -> None:
    """Overwrite the weights the circuit uses in a fresh model built with `ROPE_THETA`."""
    config = model.config
    if config.rope_parameters["rope_theta"] != ROPE_THETA:
        raise ValueError(f"the induction head needs a model built with rope_theta={ROPE_THETA}")
    H = config.hidden_size
    hd = H // config.num_attention_heads
    slow = check_fits(config.num_hidden_layers, hd, max_len)
    K, half = code_dims(H, hd), hd // 2
    gen = torch.Generator().manual_seed(seed)
    code_VK = torch.randint(0, 2, (config.vocab_size, K), generator=gen).float() * 2 - 1
    embed_VH = model.model.embed_tokens.weight
    embed_VH.zero_()
    embed_VH[:, :K] = code_VK
    embed_VH[:, -1] = math.sqrt(K)
    rms0 = math.sqrt(2 * K / H)  # RMSNorm's divisor at layer 0: a code and the constant
    rms1 = math.sqrt(3 * K / H)  # at layer 1: the code, the previous code, the constant

    inv_freq = rope_inv_freq(hd)
    q_D, k_D = torch.zeros(hd), torch.zeros(hd)  # k = q turned by one position's angle
    q_D[:half] = PREV_SHARPNESS
    k_D[:half] = PREV_SHARPNESS * torch.cos(inv_freq)
    k_D[half:] = PREV_SHARPNESS * torch.sin(inv_freq)
    constant = math.sqrt(K) / rms0
    prev = model.model.layers[0].self_attn
    for proj in (prev.q_proj, prev.k_proj, prev.v_proj):
        proj.weight[:hd].zero_()
    prev.q_proj.weight[:hd, -1] = q_D / constant
    prev.k_proj.weight[:hd, -1] = k_D / constant
    prev.v_proj.weight[:K, :K] = torch.eye(K) * rms0
    prev.o_proj.weight[:, :hd].zero_()
    prev.o_proj.weight[K:2 * K, :K] = torch.eye(K)

    dims = slow + [f + half for f in slow]
    # orthonormal rows or columns, so a code matches itself with |proj c|² = min(D, K)
    D, rank = len(dims), min(len(dims), K)
    proj_DK = torch.linalg.qr(torch.randn(max(D, K), rank, generator=gen))[0]
    proj_DK = proj_DK if D >= K else proj_DK.T
    induct = model.model.layers[1].self_attn
    for proj in (induct.q_proj, induct.k_proj, induct.v_proj):
        proj.weight[:hd].zero_()
    # score = q·k / sqrt(hd) = MATCH_SHARPNESS on a match
    induct.q_proj.weight[dims, :K] = proj_DK * rms1 * MATCH_SHARPNESS * math.sqrt(hd) / rank
    induct.k_proj.weight[dims, K:2 * K] = proj_DK * rms1
    induct.v_proj.weight[:K, :K] = torch.eye(K) * rms1
    induct.o_proj.weight[:, :hd].zero_()
    induct.o_proj.weight[2 * K:3 * K, :K] = torch.eye(K)

    model.lm_head.weight.zero_()
    model.lm_head.weight[:, 2 * K:3 * K] = code_VK * COPY_LOGIT / K
