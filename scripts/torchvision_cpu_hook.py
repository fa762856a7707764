"""torchvision's Python half on a CPU-only torch: declare its two C++ ops before it loads.

The registries' torchvision wheels are built against CUDA torch: on the CPU torch their C++
ops (`_C.so`) do not load, and `import torchvision` then fails declaring fake kernels for
`torchvision::nms` / `qnms`, operators that do not exist. Transformers' Qwen-VL processors and
vLLM's Qwen-VL models use only torchvision's Python transforms, which need no C++ op. Setup
copies this file into the CPU environment's site-packages with a `.pth` line that imports it
at interpreter start (so vLLM's own subprocesses get it too); it costs nothing until
something imports torchvision, and then declares the two schemas (never implemented: calling
`nms` raises) just before torchvision itself loads.
"""

import importlib.abc
import sys


class _DeclareOps(importlib.abc.MetaPathFinder):
    """Finds nothing (the normal finders load torchvision); declares the ops on the way."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            import torch
            for op in ("nms", "qnms"):
                torch.library.define(f"torchvision::{op}",
                                     "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


sys.meta_path.insert(0, _DeclareOps())
