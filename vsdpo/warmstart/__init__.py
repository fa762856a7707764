"""The embedded default policy: a tiny decoder and tokenizer trained here, nothing downloaded.

    from vsdpo.warmstart import WarmstartConfig, warmstart, format_prompt, format_teacher_prompt
    model_dir = warmstart(out_dir, WarmstartConfig())  # cached by a hash of the config

    from vsdpo.warmstart.measure import teacher_gate
    teacher_gate(model_dir, measure_now=True)  # the teacher gate, recorded beside the model
"""

from vsdpo.warmstart.build import WarmstartConfig, cache_key, default_cache_dir, warmstart
from vsdpo.warmstart.tokenizer import format_prompt, format_teacher_prompt

__all__ = ["WarmstartConfig", "cache_key", "default_cache_dir", "format_prompt",
           "format_teacher_prompt", "warmstart"]
