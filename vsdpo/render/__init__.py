"""Rendering: programs that draw → images, measured elements with source spans, defects.

See docs/architecture.md ("Rendering") and docs/render.md. `render(artifacts)` is the
synchronous entry point; the trainer keeps a `RenderPool` open across steps.
"""

from vsdpo.render.pool import RenderConfig, RenderPool, render
from vsdpo.render.types import DEFECT_KINDS, Artifact, Defect, Element, RenderResult

__all__ = ["DEFECT_KINDS", "Artifact", "Defect", "Element", "RenderConfig", "RenderPool",
           "RenderResult", "render"]
