"""`token_offsets` on a sampled, non-canonical token sequence: each token ends where the
decoded prefix through it ends, exactly as decoding every prefix says (partial UTF-8
characters and special tokens included), but in linear time."""

import random

import pytest

from vsdpo.model.tiny import CORPUS
from vsdpo.train.batch import decoded_ends, token_offsets
from vsdpo.warmstart.tokenizer import train_tokenizer

TEXT = "plt.bar(x, y)  # héllo 世界 🎉 done\n"


@pytest.fixture(scope="module")
def tokenizer():
    tok = train_tokenizer(CORPUS * 4, vocab_size=320)
    tok.add_special_tokens({"eos_token": "<|im_end|>"})
    return tok


def _sampled(tokenizer, length: int, seed: int) -> list[int]:
    """Pieces of the canonical ids mixed with any token (single bytes split characters)."""
    rng = random.Random(seed)
    canonical = tokenizer(TEXT * 3, add_special_tokens=False).input_ids
    return [rng.choice(canonical + list(range(len(tokenizer)))) for _ in range(length)]


@pytest.mark.parametrize("seed", range(20))
def test_decoded_ends_equal_the_lengths_of_every_decoded_prefix(tokenizer, seed):
    ids = _sampled(tokenizer, 60, seed)
    expected = [len(tokenizer.decode(ids[:i + 1], skip_special_tokens=True))
                for i in range(len(ids))]
    assert decoded_ends(tokenizer, ids) == expected


def test_the_fallback_decodes_each_token_a_bounded_number_of_times(tokenizer, monkeypatch):
    ids = tokenizer(TEXT * 40, add_special_tokens=False).input_ids[::-1]  # not canonical
    decode, decoded = tokenizer.decode, []

    def counting_decode(token_ids, **kwargs):
        decoded.append(len(token_ids))
        return decode(token_ids, **kwargs)

    monkeypatch.setattr(tokenizer, "decode", counting_decode)
    offsets = token_offsets(tokenizer, ids, decode(ids, skip_special_tokens=True))
    assert len(offsets) == len(ids) and offsets[-1][1] == len(decode(ids))
    assert len(decoded) >= len(ids)  # the fallback ran
    assert sum(decoded) <= 8 * len(ids)  # every prefix: ~len(ids)² / 2
