from vsdpo.tasks.task import DOMAINS, Task, load_tasks, save_tasks

__all__ = ["DOMAINS", "Task", "load_tasks", "save_tasks"]
