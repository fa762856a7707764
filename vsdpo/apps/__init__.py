"""The applications built on the trainer: the `vsdpo` subcommands (`commands.py`), evaluation
(`evaluate.py`), the run report (`report.py`) and the demo (`demo.py`)."""
