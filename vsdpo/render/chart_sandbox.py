"""The chart sandbox: how a worker is launched, and how each chart's process is confined.

Two layers (DESIGN.md §8):

1. **bubblewrap** around each long-lived worker (`bwrap_command`): a read-only view of `/`,
   a private size-limited `/tmp`, fresh `/dev` and `/proc`, new network (no network at all),
   PID, IPC and UTS namespaces, the repository and the home directory hidden behind empty
   tmpfs mounts (only the virtual environment, the `vsdpo` package and the matplotlib cache
   are mounted back, read-only except that cache). As root no user namespace is made, so
   the chart process can drop to `nobody` and `RLIMIT_NPROC` bites (it does not for root;
   without bwrap the process stays root, as the interpreter may sit in a 0700 home).
2. **Per chart** (`confine`, in the forked child): its own session, stdio on `/dev/null`,
   every other descriptor closed, cwd = its temp dir, `nobody` when started as root,
   rlimits on CPU seconds, address space, file size, processes, open files and core dumps,
   and an audit hook that refuses sockets, subprocesses, `fork`/`exec`, signals, `ctypes`
   loading, writes outside the temp dir and reads under hidden paths.

Without bwrap (`use_bwrap=False`, or "auto" when it is missing or fails) only layer 2
applies: the documented weaker fallback. It still blocks the same calls from Python, but
native code could get around the audit hook, and nothing hides the file system from it.
"""

import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

NOBODY = 65534
_BLOCKED_EVENTS = frozenset({
    "socket.__new__", "socket.connect", "socket.bind", "subprocess.Popen", "os.system",
    "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
    "os.killpg", "signal.pthread_kill", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
    "pty.spawn", "webbrowser.open",
})
_PATH_EVENTS = frozenset({"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.symlink",
                          "os.link", "os.chmod", "os.chown", "os.truncate", "os.utime",
                          "shutil.rmtree", "shutil.copyfile", "shutil.move"})
# Every other event (tens of thousands per chart: `id`, frame reads) leaves the hook at once.
_WATCHED_EVENTS = _BLOCKED_EVENTS | _PATH_EVENTS | {"open"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def package_root() -> str:
    """The directory holding the `vsdpo` package (what PYTHONPATH needs)."""
    return str(Path(__file__).resolve().parents[2])


def hidden_paths() -> tuple[list[str], list[str]]:
    """(paths to hide, paths under them to mount back read-only) for this installation.

    Hidden: the repository, the directory holding it (sibling checkouts, shared data) unless
    that is `/`, and the home directory.
    """
    package = Path(__file__).resolve().parents[1]
    repo = package.parent
    candidates = {repo, Path.home().resolve()}
    if repo.parent != Path(repo.anchor):
        candidates.add(repo.parent)
    hide = sorted(str(p) for p in candidates
                  if not any(q != p and p.is_relative_to(q) for q in candidates))
    keep = sorted({str(package), str(Path(sys.prefix).resolve()),
                   str(Path(sys.base_prefix).resolve())})  # the interpreter may live in ~
    return hide, keep


def bwrap_command(bwrap: str, mpl_cache: str, tmp_mb: int) -> list[str]:
    """The bubblewrap argv prefix a worker runs under."""
    hide, keep = hidden_paths()
    cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--size", str(tmp_mb << 20), "--tmpfs", "/tmp",
           "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
           "--new-session", "--chdir", "/tmp"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user"]
    for path in hide:
        cmd += ["--tmpfs", path]
    for path in keep:
        # bwrap makes missing parents 0700: open them to `nobody`, who runs the charts
        for parent in reversed(Path(path).parents):
            if any(str(parent).startswith(h + os.sep) for h in hide):
                cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--ro-bind", path, path]
    if any(mpl_cache.startswith(h) for h in hide):
        cmd += ["--bind", mpl_cache, mpl_cache]
    for path in hide:
        cmd += ["--remount-ro", path]
    return cmd


def _inside(path, root: str) -> bool:
    if isinstance(path, int):
        return True  # an already-open descriptor
    real = os.path.realpath(os.fsdecode(path))
    return real == root or real.startswith(root + os.sep) or real == os.devnull


def _audit_hook(jobdir: str, hide: list[str], keep: list[str]):
    def hidden(path) -> bool:
        if isinstance(path, int):
            return False
        real = os.path.realpath(os.fsdecode(path))
        return (any(_inside(real, h) for h in hide) and not any(_inside(real, k) for k in keep))

    def hook(event: str, args: tuple) -> None:
        if event not in _WATCHED_EVENTS:
            return
        if event in _BLOCKED_EVENTS:
            raise PermissionError(f"chart sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                      else bool((flags or 0) & _WRITE_FLAGS))
            if path is not None and writes and not _inside(path, jobdir):
                raise PermissionError(f"chart sandbox: writing {path!r} outside the temp dir")
            if path is not None and hidden(path):
                raise PermissionError(f"chart sandbox: {path!r} is not readable")
        elif event in _PATH_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path, jobdir):
                    raise PermissionError(f"chart sandbox: {event} outside the temp dir")

    return hook


def prepare_jobdir(base: str, drop_to_nobody: bool) -> str:
    """A fresh temp dir for one chart, owned by the user the chart will run as."""
    jobdir = tempfile.mkdtemp(prefix="chart-", dir=base)
    if drop_to_nobody:
        os.chown(jobdir, NOBODY, NOBODY)
    return jobdir


def remove_jobdir(jobdir: str) -> None:
    shutil.rmtree(jobdir, ignore_errors=True)


def confine(jobdir: str, result_fd: int, limits: dict, hide: list[str], keep: list[str]) -> int:
    """Lock down the forked chart process; returns the descriptor to write the result to."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.dup2(result_fd, 3)
    os.closerange(4, 1 << 16)
    os.chdir(jobdir)
    os.environ.update(HOME=jobdir, TMPDIR=jobdir)
    if limits["drop_to_nobody"]:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    cpu, mem = int(limits["cpu_s"]), int(limits["memory_mb"]) << 20
    for which, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, mem),
                         (resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) << 20),
                         (resource.RLIMIT_NPROC, int(limits["max_procs"])),
                         (resource.RLIMIT_NOFILE, 256), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(which, (value, value))
    sys.addaudithook(_audit_hook(os.path.realpath(jobdir), hide, keep))
    return 3
