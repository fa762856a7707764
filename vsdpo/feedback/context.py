"""The teacher's privileged context: what the same model sees when it re-scores the
student's tokens as the self-distillation teacher.

Layout (`ContextConfig.layout`): the original prompt, then the feedback on the student's
attempt, then the instruction to solve the original task. The feedback is one of
- a rubric, one line per defect, most severe first: traced (`traced=True`, Visual-SDPO), its
  kind, severity, the code lines the detector blamed (line numbers and stripped text) and the
  measured numbers (the defect message); plain (`traced=False`, SDPO: the environment's
  feedback only), its kind, severity and message, with no line number and no quoted code;
- the trimmed traceback, when the code failed (`result.ok` is False);
- a note that the render was blank;
plus, optionally, a sibling of the same group that rendered with no defects, as a correct
solution for reference (as in SDPO); then the attempt itself, last so it sits nearest the
completion, which repairs it where the feedback points and copies it elsewhere (the teacher
scores the attempt's tokens anyway; without the text, a teacher writing its own program
re-rolls every choice the feedback does not mention). The total is capped at `max_chars`:
the sibling goes first, then the attempt, then rubric lines, least severe first; the prompt
and instruction are never cut.
Chat templates are applied by the caller. A vision-language teacher also sees the student's
render, with its defect boxes drawn on it (`teacher_screenshot`).
"""

from dataclasses import dataclass

from vsdpo.feedback.reward import is_blank
from vsdpo.render.draw import draw_defects, open_rgb
from vsdpo.render.types import Defect, RenderResult, Span
from vsdpo.tasks.task import Task


@dataclass
class ContextConfig:
    """Templates (`str.format` with the named fields shown) and length caps."""

    layout: str = "{prompt}\n\n{feedback}\n\n{instruction}"
    attempt_note: str = "The attempt this feedback is about:\n{code}"
    rubric_header: str = "Feedback on a previous attempt: its render has these problems:"
    defect_line: str = "- {kind} (severity {severity:.2f}) at {where}: {message}"
    plain_defect_line: str = "- {kind} (severity {severity:.2f}): {message}"
    omitted_line: str = "- ... {count} less severe problem(s) omitted"
    clean_note: str = "Feedback on a previous attempt: it rendered with no detected problems."
    error_note: str = "Feedback on a previous attempt: it failed to run:\n{traceback}"
    blank_note: str = "Feedback on a previous attempt: it ran but rendered a blank image."
    sibling_note: str = "A correct solution for reference:\n{code}"
    instruction: str = "Now solve the original task, using this feedback."
    max_chars: int = 6000
    max_traceback_lines: int = 12
    max_quote_chars: int = 80

    def __post_init__(self):
        if self.max_chars < 1 or self.max_traceback_lines < 1 or self.max_quote_chars < 8:
            raise ValueError("ContextConfig: max_chars and max_traceback_lines must be >= 1 "
                             f"and max_quote_chars >= 8, got {self}")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(code: str, spans: list[Span], cfg: ContextConfig) -> str:
    """`line 7: ax.set_title(...)`, `lines 7-9: a / b`; spans on the same lines are joined
    (`line 13: margin:0 | padding:0`), each quote is the span's own text, stripped."""
    quotes: dict[str, list[str]] = {}
    for start, end in spans:
        first = code.count("\n", 0, start) + 1
        last = first + code.count("\n", start, max(start, end - 1))
        where = f"line {first}" if first == last else f"lines {first}-{last}"
        text = " / ".join(s.strip() for s in code[start:end].splitlines() if s.strip())
        if text and text not in quotes.setdefault(where, []):
            quotes[where].append(text)
    return "; ".join(f"{where}: {_clip(' | '.join(texts), cfg.max_quote_chars)}"
                     for where, texts in quotes.items())


def _traced_line(d: Defect, code: str | None, cfg: ContextConfig) -> str:
    where = _where(code, d.spans, cfg) if code is not None and d.spans else ""
    if not where:
        where = f"({d.bbox[0]:.0f}, {d.bbox[1]:.0f})-({d.bbox[2]:.0f}, {d.bbox[3]:.0f}) px"
    return cfg.defect_line.format(kind=d.kind, severity=d.severity, where=where,
                                  message=d.message)


def _plain_line(d: Defect, cfg: ContextConfig) -> str:
    return cfg.plain_defect_line.format(kind=d.kind, severity=d.severity, message=d.message)


def _trim_traceback(error: str, budget: int, cfg: ContextConfig) -> str:
    """The last lines of the traceback (where the error is), within `budget` characters;
    at least the tail of its last line (the exception) when nothing else fits."""
    lines = (error or "unknown error").strip().splitlines()[-cfg.max_traceback_lines:]
    while len(lines) > 1 and len("\n".join(lines)) > budget:
        lines = lines[1:]
    text = "\n".join(lines)
    return text[-budget:] if 0 < budget < len(text) else text


def _rubric(lines: list[str], budget: int, cfg: ContextConfig) -> str:
    """Rubric lines (most severe first), dropping the least severe until within budget."""
    keep = len(lines)
    def text(n: int) -> str:
        tail = [cfg.omitted_line.format(count=len(lines) - n)] if n < len(lines) else []
        return "\n".join([cfg.rubric_header, *lines[:n], *tail])
    while keep > 0 and len(text(keep)) > budget:
        keep -= 1
    return text(keep)


def _feedback(result: RenderResult, code: str | None, traced: bool, budget: int,
              cfg: ContextConfig) -> str:
    if not result.ok:
        room = budget - len(cfg.error_note.format(traceback=""))
        return cfg.error_note.format(traceback=_trim_traceback(result.error, room, cfg))
    if is_blank(result):
        return cfg.blank_note
    if not result.defects:
        return cfg.clean_note
    ranked = sorted(result.defects, key=lambda d: -d.severity)
    lines = [_traced_line(d, code, cfg) if traced else _plain_line(d, cfg) for d in ranked]
    return _rubric(lines, budget, cfg)


def teacher_context(task: Task, result: RenderResult, sibling: str | None = None, *,
                    code: str | None = None, traced: bool = True,
                    config: ContextConfig = ContextConfig()) -> str:
    """The teacher's prompt for one sample; `code` is the student's rendered code (shown as
    the attempt, and the string the defect spans index; without it the traced rubric cites
    pixel boxes instead of lines); `traced=False` gives the plain rubric; `sibling` is the
    code of a defect-free sibling, or None."""
    cfg = config
    frame = len(cfg.layout.format(prompt=task.prompt, feedback="", instruction=cfg.instruction))
    budget = cfg.max_chars - frame
    feedback = _feedback(result, code, traced, budget, cfg)
    attempt = "" if code is None else "\n\n" + cfg.attempt_note.format(code=code)
    if len(feedback) + len(attempt) > budget:
        attempt = ""
    shown = "" if sibling is None else "\n\n" + cfg.sibling_note.format(code=sibling)
    if len(feedback) + len(attempt) + len(shown) > budget:
        shown = ""
    return cfg.layout.format(prompt=task.prompt, feedback=feedback + shown + attempt,
                             instruction=cfg.instruction)


def teacher_screenshot(result: RenderResult, boxed: bool = True):
    """The student's render as a vision-language teacher sees it (a PIL image), with each
    defect's box drawn on it when `boxed`; None when the code failed or nothing was captured
    (the rubric then carries the traceback)."""
    if not result.ok or result.image is None:
        return None
    if boxed:
        return draw_defects(result.image, result.defects)
    return open_rgb(result.image)


def reference_context(task: Task, config: ContextConfig = ContextConfig()) -> str:
    """OPSD's privileged context: the task's reference program in place of feedback on the
    student's attempt (worded as the sibling note, which the embedded teacher has read)."""
    feedback = config.sibling_note.format(code=task.reference_code)
    return config.layout.format(prompt=task.prompt, feedback=feedback,
                                instruction=config.instruction)


def best_sibling(index: int, codes: list[str], results: list[RenderResult],
                 rewards: list[float]) -> str | None:
    """The highest-reward other sample of the group that ran with no defects, or None."""
    clean = [j for j, r in enumerate(results) if j != index and r.ok and not r.defects]
    return codes[max(clean, key=lambda j: rewards[j])] if clean else None
