"""The student's and the teacher's prompt text for the policy's tokenizer.

A tokenizer with a chat template (an instruct model: Qwen2.5-Coder-7B-Instruct in the GPU
recipes) gets its own template, one user turn and the generation prompt; the teacher's turn
holds the teacher context (task prompt, feedback, instruction) instead of the task prompt.
The embedded tiny tokenizer has no template and keeps the markers its warm-started model was
trained on (`vsdpo.warmstart.tokenizer`), byte for byte. This is the one place that chooses.

Generation stops at the tokenizer's `eos_token`; for Qwen2.5 instruct that is `<|im_end|>`,
the end of the assistant turn.
"""

from transformers import PreTrainedTokenizerBase

from vsdpo.warmstart.tokenizer import format_prompt, format_teacher_prompt


def student_prompt(tokenizer: PreTrainedTokenizerBase, task_prompt: str) -> str:
    """The prompt the policy samples a program from."""
    return _format(tokenizer, task_prompt, format_prompt)


def teacher_prompt(tokenizer: PreTrainedTokenizerBase, context: str) -> str:
    """The prompt the teacher re-scores the student's program under
    (`context` is `vsdpo.feedback.teacher_context`'s text)."""
    return _format(tokenizer, context, format_teacher_prompt)


def _format(tokenizer: PreTrainedTokenizerBase, content: str, markers) -> str:
    """The chat template's user turn and generation prompt, else the tiny model's `markers`."""
    if tokenizer.chat_template is None:
        return markers(content)
    return tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                         add_generation_prompt=True, tokenize=False)
