from vsdpo.render.types import DEFECT_KINDS, Artifact, Defect, Element, RenderResult

__all__ = ["DEFECT_KINDS", "Artifact", "Defect", "Element", "RenderResult"]
