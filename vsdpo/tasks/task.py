"""The task record: one prompt of one domain, optionally with a reference
(docs/architecture.md, "Tasks")."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

# Kept free of `vsdpo.render` imports: the render package imports feedback, which imports this.
DOMAINS = ("chart", "web", "slide")


@dataclass(frozen=True)
class Task:
    id: str
    domain: str  # one of DOMAINS (vsdpo.render.types.Domain)
    prompt: str
    reference_code: str | None = None
    reference_image: str | None = None  # path to a PNG, relative to the JSONL file

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise ValueError(f"task {self.id!r}: domain must be one of {DOMAINS}, got {self.domain!r}")


def load_tasks(path: str | Path) -> list[Task]:
    """Read one task per line; a bad line raises naming the file and line number. A relative
    `reference_image` comes back resolved against the file's folder."""
    tasks = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if record.get("reference_image"):
                record["reference_image"] = str(Path(path).parent / record["reference_image"])
            tasks.append(Task(**record))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ValueError(f"{path}:{lineno}: not a valid task record: {err}") from None
    return tasks


def save_tasks(tasks: list[Task], path: str | Path) -> None:
    Path(path).write_text("".join(json.dumps(asdict(t)) + "\n" for t in tasks))
