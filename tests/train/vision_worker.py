"""One rank of the vision-language FSDP2 test, for `torch.multiprocessing.spawn`.

Rank 0's rows carry images, rank 1's are text only: the vision tower must still run on
rank 1 (its FSDP units' collectives), or the job hangs. Each rank saves the full gradient
of every parameter (None where it has none) after one backward of `vision_loss`.
"""

import os

import torch
from PIL import Image, ImageDraw


def picture(color: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((10, 10, size[0] // 2, size[1] // 2), fill=color)
    return image


def rank_batch(model_dir: str, rank: int):
    """`(ids_BL, mask_BL, images)` of one rank: two image prompts, or two text prompts."""
    from transformers import AutoTokenizer

    from vsdpo.model.images import ImageProcessor, Images
    from vsdpo.train.prompts import student_prompt
    tok = AutoTokenizer.from_pretrained(model_dir)
    processor = ImageProcessor(model_dir, max_pixels=28 * 28 * 16)
    texts = ["chart: bar | title: Sales", "web: card | title: Team | text: New"]
    pictures = [[picture("red", (120, 90))], [picture("blue", (60, 140))]] if rank == 0 else [[], []]
    rows, pixels = [], []
    for text, images in zip(texts, pictures):
        ids = tok(student_prompt(tok, text, len(images)), add_special_tokens=False).input_ids
        pixels.append(processor(images))
        rows.append(processor.expand(ids, pixels[-1]))
    length = max(map(len, rows))
    ids_BL = torch.full((2, length), tok.pad_token_id)
    mask_BL = torch.zeros((2, length), dtype=torch.long)
    for b, row in enumerate(rows):
        ids_BL[b, :len(row)], mask_BL[b, :len(row)] = torch.tensor(row), 1
    return ids_BL, mask_BL, Images.cat(pixels)


def vision_loss(policy, ids_BL, mask_BL, images) -> torch.Tensor:
    hidden_BLH = policy(ids_BL, mask_BL, images)
    return (hidden_BLH[mask_BL > 0] @ policy.lm_head_weight.T).logsumexp(-1).mean()


def grads_worker(rank, world, port, model_dir, out_dir, freeze_vision):
    """A trained tower runs with activation checkpointing on both parts, a frozen one without."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        _CHECKPOINT_PREFIX,
    )
    from torch.distributed.tensor import DTensor

    from vsdpo.config import ModelConfig
    from vsdpo.model.parallelize import build_policy
    from vsdpo.train.distributed import exit_process, init_distributed
    _, _, device = init_distributed()
    policy = build_policy(ModelConfig(path=model_dir, freeze_vision=freeze_vision,
                                      activation_checkpointing=not freeze_vision), device)
    vision_loss(policy, *rank_batch(model_dir, rank)).backward()
    grads = {}
    for name, p in policy.named_parameters():
        g = p.grad
        grads[name.replace(_CHECKPOINT_PREFIX, "")] = (
            None if g is None else (g.full_tensor() if isinstance(g, DTensor) else g))
    if rank == 0:
        torch.save(grads, os.path.join(out_dir, f"grads_{freeze_vision}.pt"))
    exit_process(0)
