"""The chart sandbox: how a worker is launched, and how each chart's process is confined.

Two layers (docs/render.md, "Sandbox"), both built on one allow-list (`visible_mounts`): the system
(`/usr` and the `/bin`, `/lib`... beside it, the few files of `/etc` the loader and
fontconfig read), the interpreter, the virtual environment, the `vsdpo` package (not the
checkout around it) and the matplotlib cache. Nothing else: not the home directory, the
checkout, its siblings or other projects, wherever they are.

1. **bubblewrap** around each long-lived worker (`bwrap_command`): an empty read-only root
   with the allow-list mounted read-only (the matplotlib cache read-write), a private
   size-limited `/tmp` (a checkout under `/tmp` is mounted back on top of it), fresh `/dev`
   and `/proc`, new network (no network at all), PID, IPC and UTS namespaces. As root no
   user namespace is made, so the chart process can drop to `nobody` and `RLIMIT_NPROC`
   bites (it does not for root; without bwrap the process stays root, as the interpreter
   may sit in a 0700 home).
2. **Per chart** (`confine`, in the forked child): its own session, stdio on `/dev/null`,
   every other descriptor closed, cwd = its temp dir, `nobody` when started as root,
   rlimits on CPU seconds, address space, file size, processes, open files and core dumps,
   and an audit hook that refuses sockets, subprocesses, `fork`/`exec`, signals, `ctypes`
   loading, writes outside the temp dir and reads outside the allow-list and the temp dir.

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
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the dynamic loader, the C library and fontconfig read; the rest of /etc (pip.conf,
# gitconfig, ssh keys...) stays out.
_ETC = ("alternatives", "fonts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime")
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


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def visible_mounts(mpl_cache: str) -> list[tuple[str, str, str]]:
    """The allow-list as bubblewrap mounts: (option, source, destination), parents first.

    Python paths are mounted at their real path and, when that differs, at the path the
    worker is started by (`sys.executable` lies in `sys.prefix`). A read-only path inside
    another one is left out.
    """
    mounts = []
    for path in _SYSTEM + tuple(os.path.join("/etc", name) for name in _ETC):
        if os.path.islink(path):
            mounts.append(("--symlink", os.readlink(path), path))
        elif os.path.exists(path):
            mounts.append(("--ro-bind", path, path))
    package = str(Path(__file__).resolve().parent.parent)
    for option, path in (("--ro-bind", sys.base_prefix), ("--ro-bind", sys.prefix),
                         ("--ro-bind", package), ("--bind", mpl_cache)):
        real = os.path.realpath(path)
        for dest in sorted({real, os.path.abspath(path)}):
            mounts.append((option, real, dest))
    ro = [dest for option, _, dest in mounts if option == "--ro-bind"]
    mounts = [m for m in dict.fromkeys(mounts)  # drop duplicates, keep order
              if m[0] != "--ro-bind" or not any(d != m[2] and _inside(m[2], d) for d in ro)]
    return sorted(mounts, key=lambda m: Path(m[2]).parts)


def readable_paths(mpl_cache: str) -> list[str]:
    """The allow-list for the audit hook (none inside another): each mount point, as a path
    resolves inside bubblewrap (a venv reached through a symlink is mounted there, not
    linked), and its real path, as a path resolves outside it."""
    dests = [dest for _, _, dest in visible_mounts(mpl_cache)]
    paths = set(dests) | {os.path.realpath(dest) for dest in dests}
    return sorted(p for p in paths if not any(q != p and _inside(p, q) for q in paths))


def bwrap_command(bwrap: str, mpl_cache: str, tmp_mb: int) -> list[str]:
    """The bubblewrap argv prefix a worker runs under."""
    cmd = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
           "--new-session", "--dev", "/dev", "--proc", "/proc"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user"]
    tmp = ("--tmpfs", str(tmp_mb << 20), "/tmp")  # before anything mounted under /tmp
    binds, made = [], {"/", "/dev", "/proc"}
    for option, source, dest in sorted(visible_mounts(mpl_cache) + [tmp],
                                       key=lambda m: Path(m[2]).parts):
        # bwrap makes missing parents 0700: open them to `nobody`, who runs the charts
        for parent in map(str, reversed(Path(dest).parents)):
            if parent not in made and not any(_inside(parent, b) for b in binds):
                cmd += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        cmd += (["--size", source, "--tmpfs", dest] if option == "--tmpfs"
                else [option, source, dest])
        made.add(dest)
        if option in ("--ro-bind", "--bind"):
            binds.append(dest)  # its subdirectories exist: they come from the host
    return cmd + ["--remount-ro", "/", "--chdir", "/tmp"]  # the root only, not its mounts


def _audit_hook(jobdir: str, readable: list[str]):
    """Writes only in `jobdir`, reads only there, in `readable` and from /dev/null."""
    roots = [jobdir, *readable]

    def inside(path, allowed: list[str]) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        real = os.path.realpath(os.fsdecode(path))
        return real == os.devnull or any(_inside(real, root) for root in allowed)

    def hook(event: str, args: tuple) -> None:
        if event not in _WATCHED_EVENTS:
            return
        if event in _BLOCKED_EVENTS:
            raise PermissionError(f"chart sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                      else bool((flags or 0) & _WRITE_FLAGS))
            if path is not None and writes and not inside(path, [jobdir]):
                raise PermissionError(f"chart sandbox: writing {path!r} outside the temp dir")
            if path is not None and not inside(path, roots):
                raise PermissionError(f"chart sandbox: {path!r} is not readable")
        elif event in _PATH_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and not inside(path, [jobdir]):
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


def confine(jobdir: str, result_fd: int, limits: dict, readable: list[str]) -> int:
    """Lock down the forked chart process; returns the descriptor to write the result to.

    `readable`: `readable_paths()`, what the chart may read besides its temp dir.
    """
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
    sys.addaudithook(_audit_hook(os.path.realpath(jobdir), readable))
    return 3
