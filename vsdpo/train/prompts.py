"""The student's and the teacher's prompt text for the policy's tokenizer.

A tokenizer with a chat template (an instruct model: Qwen2.5-Coder-7B-Instruct in the GPU
recipes) gets its own template, one user turn and the generation prompt; the teacher's turn
holds the teacher context (task prompt, feedback, instruction) instead of the task prompt.
The embedded tiny tokenizer has no template and keeps the markers its warm-started model was
trained on (`vsdpo.warmstart.tokenizer`), byte for byte. This is the one place that chooses.

A vision-language policy's prompts hold `images` image slots ahead of the text: `image`
content parts of the chat template, or Qwen's `<|vision_start|><|image_pad|><|vision_end|>`
markers for the tiny VL tokenizer. `vsdpo.model.images` expands each pad to its image's tokens.

Generation stops at the tokenizer's `eos_token`; for Qwen2.5 instruct that is `<|im_end|>`,
the end of the assistant turn.
"""

from transformers import PreTrainedTokenizerBase

from vsdpo.warmstart.tokenizer import format_prompt, format_teacher_prompt

IMAGE_SLOT = "<|vision_start|><|image_pad|><|vision_end|>"


def student_prompt(tokenizer: PreTrainedTokenizerBase, task_prompt: str, images: int = 0) -> str:
    """The prompt the policy samples a program from."""
    return _format(tokenizer, task_prompt, format_prompt, images)


def teacher_prompt(tokenizer: PreTrainedTokenizerBase, context: str, images: int = 0) -> str:
    """The prompt the teacher re-scores the student's program under
    (`context` is `vsdpo.feedback.teacher_context`'s text)."""
    return _format(tokenizer, context, format_teacher_prompt, images)


def _format(tokenizer: PreTrainedTokenizerBase, content: str, markers, images: int) -> str:
    """The chat template's user turn and generation prompt, else the tiny model's `markers`."""
    if tokenizer.chat_template is None:
        return markers(IMAGE_SLOT * images + content)
    if images:
        content = [{"type": "image"}] * images + [{"type": "text", "text": content}]
    return tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                         add_generation_prompt=True, tokenize=False)
