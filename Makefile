# The two commands of the README: `make demo` (the main job) and `make test`.
.PHONY: setup demo test bench
PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m vsdpo.cli demo

test: setup
	$(PY) -m pytest tests

# Benchmarks write JSON under bench/results/ (minutes; not part of `make test`).
bench: setup
	$(PY) bench/loss.py
	$(PY) bench/render.py
	$(PY) -m pytest bench --benchmark-enable --benchmark-json=bench/results/pytest_loss_cpu.json
	OMP_NUM_THREADS=1 .venv/bin/torchrun --nproc_per_node=2 bench/step.py --set rollout.engine=transformers
	OMP_NUM_THREADS=1 .venv/bin/torchrun --nproc_per_node=2 bench/step.py --set rollout.engine=vllm --modes 0
