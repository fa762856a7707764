from vsdpo.tasks.synthetic import generate_tasks
from vsdpo.tasks.task import DOMAINS, Task, load_tasks, save_tasks

__all__ = ["DOMAINS", "Task", "generate_tasks", "load_tasks", "save_tasks"]
