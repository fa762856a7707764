"""Compiles every Triton kernel of kernels/ ahead of time for Hopper (sm_90) and reports the
resource usage that Triton's bundled cuobjdump prints. Run as a script with TRITON_INTERPRET
unset (the interpreter replaces @triton.jit functions); prints one JSON list on stdout.
No GPU is needed: ptxas and cuobjdump ship with Triton."""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from kernels import vsdpo_triton

CUOBJDUMP = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
TARGET = GPUTarget("cuda", 90, 32)


def signature(kernel, dtype: str) -> dict:
    """Argument types by name: logits pointers of `dtype`, the rest fp32/int as declared."""
    sig = {}
    for name in kernel.arg_names:
        if name in ("s_ptr", "t_ptr", "g_ptr"):
            sig[name] = f"*{dtype}"
        elif name == "target_ptr":
            sig[name] = "*i64"
        elif name.endswith("_ptr"):
            sig[name] = "*fp32"
        elif name.endswith("_stride") or name == "V":
            sig[name] = "i64" if name.endswith("_stride") else "i32"
        elif name in ("DIVERGENCE", "BLOCK_V"):
            sig[name] = "constexpr"
        else:
            sig[name] = "fp32"
    return sig


def resource_usage(cubin: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([str(CUOBJDUMP), "--dump-resource-usage", f.name], capture_output=True, text=True, check=True).stdout
    # LOCAL is per-thread local memory: with STACK 0 it is register spilling.
    line = next(line for line in text.splitlines() if "REG:" in line)
    found = {key.lower(): int(value) for key, value in re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", line)}
    found["raw"] = line.strip()
    return found


def main() -> None:
    results = []
    kernels = {"_vsdpo_fwd_kernel": vsdpo_triton._vsdpo_fwd_kernel, "_vsdpo_bwd_kernel": vsdpo_triton._vsdpo_bwd_kernel}
    for name, kernel in kernels.items():
        for divergence, div_id in vsdpo_triton.DIVERGENCE_IDS.items():
            for dtype in ("fp32", "bf16"):
                constexprs = {"DIVERGENCE": div_id, "BLOCK_V": vsdpo_triton.MAX_BLOCK_V}
                src = ASTSource(fn=kernel, signature=signature(kernel, dtype), constexprs=constexprs)
                compiled = triton.compile(src, target=TARGET, options={"num_warps": vsdpo_triton.NUM_WARPS})
                usage = resource_usage(compiled.asm["cubin"])
                results.append({"kernel": name, "divergence": divergence, "dtype": dtype, **usage})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
