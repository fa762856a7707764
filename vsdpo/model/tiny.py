"""A tiny random causal LM with the project's byte-level tokenizer, saved as a transformers
directory.

Tests and smoke runs use it where no trained model is wanted: it loads through the same
`AutoModelForCausalLM` / `AutoTokenizer` path as any real model, in well under a second.
"""

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vsdpo.warmstart.tokenizer import train_tokenizer

CORPUS = [
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(6, 4))\n",
    "ax.bar(['North', 'South', 'East'], [1, 2, 3])\nplt.xticks(rotation=45)\n",
    "<html><body><div style=\"width: 200px\"><h1>Title</h1><p>Text</p></div></body></html>\n",
    "Feedback on a previous attempt: text overflows its box; labels overlap.\n",
]


def save_tiny_model(path: str | Path, hidden_size: int = 64, num_layers: int = 2,
                    seed: int = 0) -> Path:
    """Write a random Llama decoder and its tokenizer to `path`; returns the path.

    Llama, as the warm-start model: beside a `qwen2` config transformers 5 would load the
    tokenizer as `Qwen2Tokenizer`, with its own pre-tokenizer instead of ours.
    """
    tokenizer = train_tokenizer(CORPUS * 4, vocab_size=320)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)
