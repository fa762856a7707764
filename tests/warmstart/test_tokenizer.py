"""The embedded tokenizer: exact round trips, offsets that tile the text, prompt formats."""

from transformers import AutoTokenizer

from vsdpo.tasks import DOMAINS, generate_tasks
from vsdpo.tasks.programs import solve, styles
from vsdpo.warmstart.tokenizer import (ASSISTANT, BOS, EOS, SPECIAL_TOKENS, format_prompt,
                                       format_teacher_prompt, train_tokenizer)


def _texts() -> list[str]:
    tasks = generate_tasks(DOMAINS, 60, seed=0)
    return [format_prompt(t.prompt) + solve(t, s) + EOS for t in tasks for s in styles(t.domain)]


def test_any_text_round_trips_exactly_and_offsets_tile_it(tmp_path):
    train_tokenizer(_texts(), 600).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    task = generate_tasks("chart", 1, seed=0, split="eval")[0]
    for text in (solve(task, "rotate"), "  tabs\tand ünïcödé ☃\n\n<li>x</li>", ""):
        enc = tok(text, return_offsets_mapping=True)
        assert tok.decode(enc.input_ids) == text
        assert [tuple(o) for o in enc.offset_mapping] == _tiling(enc.offset_mapping, len(text))


def _tiling(offsets, length: int) -> list[tuple[int, int]]:
    """The offsets a gap-free, overlap-free cover of [0, length) would have (multi-byte
    characters may share a span across tokens)."""
    cover = [tuple(o) for o in offsets]
    assert not cover or (cover[0][0] == 0 and cover[-1][1] == length)
    assert all(a[1] <= b[0] or a == b for a, b in zip(cover, cover[1:]))
    return cover


def test_special_markers_are_single_tokens_and_nothing_is_added_implicitly(tmp_path):
    train_tokenizer(_texts(), 600).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert len(tok) <= 600
    ids = tok(format_teacher_prompt("ctx")).input_ids
    assert tok.convert_ids_to_tokens([ids[0], ids[1], ids[-1]]) == [BOS, "<|feedback|>", ASSISTANT]
    assert all(len(tok(s).input_ids) == 1 for s in SPECIAL_TOKENS)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS, EOS, "<|pad|>")


def test_a_word_is_the_same_token_in_the_prompt_and_in_the_program(tmp_path):
    train_tokenizer(_texts(), 600).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    task = generate_tasks("chart", 1, seed=0)[0]
    prompt_tokens = set(tok.tokenize(format_prompt(task.prompt)))
    label = task.prompt.split("panel: ")[1].split("=")[0]
    assert set(tok.tokenize(label)) <= prompt_tokens
    assert set(tok.tokenize(label)) <= set(tok.tokenize(solve(task, "flat")))


def test_a_too_small_vocabulary_is_refused_naming_the_minimum():
    import pytest
    with pytest.raises(ValueError, match="vocab_size must be >= 262"):
        train_tokenizer(["x"], 100)
