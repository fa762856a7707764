"""The embedded policy's tokenizer and its prompt formats.

A byte-level BPE (any text round-trips exactly) trained on the warm-start corpus, wrapped as
a transformers `PreTrainedTokenizerFast`: `AutoTokenizer.from_pretrained` loads it beside a
`llama` config (beside a `qwen2` one, transformers 5 substitutes `Qwen2Tokenizer` and its own
pre-tokenizer), and `return_offsets_mapping=True` gives the character offsets the credit
weights need. Offsets are not trimmed, so the spans of a completion's tokens tile it.

Sequences are `prompt ; completion ; <|eos|>`. The student's prompt and the teacher's prompt
differ in their first marker, so the model knows whether it is reading feedback:

    student: <|bos|><|user|>{task prompt}<|assistant|>{program}<|eos|>
    teacher: <|bos|><|feedback|>{teacher context}<|assistant|>{program}<|eos|>

Tokenize the prompt and the completion separately (`add_special_tokens=False` is the default
behaviour: nothing is added); the special markers split, so no token straddles the boundary.
"""

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
USER, FEEDBACK, ASSISTANT = "<|user|>", "<|feedback|>", "<|assistant|>"
SPECIAL_TOKENS = (PAD, BOS, EOS, USER, FEEDBACK, ASSISTANT)
# Pre-tokenizer pieces: a whole tag (`<li>`, `</h2>`, `<div`), a dotted or hyphenated name
# (`ax.bar`, `font-size`, `1.5`), a word, a punctuation run with at most one leading space,
# or a whitespace run. Words never carry a space, so a word is the same token in the prompt
# (`panel: North=3; ...`) and in the program (`axes[0].bar('North', 3)`), unlike GPT-2's `Ġword`
# pieces: copying a label is a token-level copy.
_PIECES = r"</?\w+>?|\w+(?:[.-]\w+)+|\w+| ?[^\w\s]+|\s+"


def format_prompt(task_prompt: str) -> str:
    """The student's prompt text for one task prompt."""
    return f"{BOS}{USER}{task_prompt}{ASSISTANT}"


def format_teacher_prompt(context: str) -> str:
    """The teacher's prompt text for one teacher context (`vsdpo.feedback.teacher_context`)."""
    return f"{BOS}{FEEDBACK}{context}{ASSISTANT}"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE with `vocab_size` entries (specials and the 256 bytes included)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIAL_TOKENS)} (bytes + "
                         f"special tokens), got {vocab_size}")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_PIECES), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=2, show_progress=False)
    bpe.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        extra_special_tokens=[USER, FEEDBACK, ASSISTANT], model_max_length=4096,
        clean_up_tokenization_spaces=False)
