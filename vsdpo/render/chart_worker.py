"""The warm chart worker: matplotlib imported once, one forked child per chart.

Run by `ChartRenderer` (inside bubblewrap when available) with its settings as JSON in
argv. It speaks length-prefixed JSON
frames on stdin/stdout: requests `{"code": ...}`, replies a result dict (PNG base64-encoded)
that `vsdpo.render.chart` turns into a `RenderResult`. Per request it forks; the child
confines itself (`chart_sandbox.confine`), runs the code with the Agg backend and tracing
installed, draws the figure, extracts elements and ChartMimic's log (`chart_log`), runs the
chart detectors and writes the reply to a pipe. The worker enforces the wall-clock timeout,
kills whatever the chart left running, removes its temp dir and survives anything the chart
does. A chart process dies with its worker (it would otherwise outlive a killed worker,
orphaned in its own session).
"""

import base64
import builtins
import colorsys  # noqa: F401 - imported once here, not in every chart (see warm_up)
import contextlib
import ctypes
import gc
import importlib
import io
import json
import linecache
import os
import select
import signal
import struct
import sys
import time
import traceback
import warnings
import zlib

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402
from PIL import Image  # noqa: E402

from vsdpo.render import chart_log, chart_rc, chart_sandbox, chart_trace  # noqa: E402
from vsdpo.render.detect_chart import detect_chart_defects  # noqa: E402

MAX_REPLY_BYTES = 64 << 20
_PR_SET_PDEATHSIG = 1
_LAYOUT_WORDS = ("layout", "decorations")
_figures = {"saved": None, "created": None, "saved_kwargs": {}}


def read_frame(stream) -> bytes | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    return stream.read(struct.unpack(">I", header)[0])


def frame(payload: dict) -> bytes:
    data = json.dumps(payload).encode()
    return struct.pack(">I", len(data)) + data


def _install_capture() -> None:
    """`show` does nothing; `savefig` writes nothing: the capture is the figure itself."""
    original_init = Figure.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        _figures["created"] = self

    def savefig(self, *args, **kwargs):
        _figures.update(saved=self, saved_kwargs=kwargs)

    Figure.__init__ = init
    Figure._vs_savefig = Figure.savefig
    Figure.savefig = savefig
    plt.savefig = lambda *args, **kwargs: savefig(plt.gcf(), **kwargs)  # pyplot's redraws
    plt.show = lambda *args, **kwargs: None


def warm_up() -> None:
    """Import, patch, and draw one figure so fonts and caches are loaded before forking.

    Also imports what chart programs commonly import (`numpy.random`, `mpl_toolkits`,
    PIL's plugins; pandas, scipy, seaborn, squarify where installed — a chart that needs a
    missing one fails with its ImportError) so each forked child does not pay for it again
    (seaborn alone takes about 2 s).
    """
    import matplotlib.ticker  # noqa: F401
    import mpl_toolkits.axes_grid1  # noqa: F401
    import mpl_toolkits.mplot3d  # noqa: F401
    import numpy.random  # noqa: F401
    for optional in ("pandas", "scipy.stats", "seaborn", "squarify"):
        with contextlib.suppress(ImportError):
            importlib.import_module(optional)

    Image.init()
    chart_trace.install()
    chart_log.install()
    chart_rc.install()
    _install_capture()
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2], label="x")
    ax.plot([0, 1], [1, 0])
    ax.set_title("warm $x^2$")
    ax.legend()
    fig.canvas.draw()
    chart_trace.extract(fig, fig.canvas.get_renderer(), "")
    plt.close("all")
    _figures.update(saved=None, created=None, saved_kwargs={})


def user_traceback(exc: BaseException, prefix: str = "") -> str:
    """The traceback with only the user's frames (`File "<chart>", line N`)."""
    exc.__context__ = exc.__cause__ = None
    tb = traceback.TracebackException.from_exception(exc)
    tb.stack = traceback.StackSummary.from_list(
        [f for f in tb.stack if f.filename == chart_trace.USER_FILE])
    return prefix + "".join(tb.format())


def _pick_figure():
    """The current figure, else the last saved or created one (`plt.close()` after saving)."""
    fig = plt.gcf() if plt.get_fignums() else _figures["saved"] or _figures["created"]
    fig = fig or plt.figure()
    if not isinstance(fig.canvas, FigureCanvasAgg):  # a closed figure lost its canvas
        FigureCanvasAgg(fig)
    return fig


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _encode(rgba_HW4) -> bytes:
    """RGB PNG, no row filters, zlib level 1: half of PIL's time (it tries every filter)."""
    height, width = rgba_HW4.shape[:2]
    rows_HR = np.empty((height, 1 + 3 * width), np.uint8)
    rows_HR[:, 0] = 0  # filter type "None" on every row
    rows_HR[:, 1:].reshape(height, width, 3)[...] = rgba_HW4[..., :3]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows_HR.data, 1)) + _png_chunk(b"IEND", b""))


def _saved_region(fig, items) -> tuple[int, int, int, int] | None:
    """Pixels `savefig(bbox_inches="tight")` would keep (top-left origin), or None.

    The union of the traced boxes (data clipped to its axes), padded like savefig pads:
    matplotlib's own `get_tightbbox` would measure every artist again.
    """
    kwargs = _figures["saved_kwargs"] if _figures["saved"] is fig else {}
    if kwargs.get("bbox_inches", matplotlib.rcParams["savefig.bbox"]) != "tight" or not items:
        return None
    pad = kwargs.get("pad_inches")
    pad = matplotlib.rcParams["savefig.pad_inches"] if pad in (None, "layout") else pad
    boxes = []
    for item in items:
        box = item.element.bbox
        if item.element.role == "data" and item.artist.get_clip_on() and item.axes is not None:
            ax = items[item.axes].element.bbox
            box = (max(box[0], ax[0]), max(box[1], ax[1]), min(box[2], ax[2]), min(box[3], ax[3]))
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    x0, y0, x1, y1 = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                      max(b[2] for b in boxes), max(b[3] for b in boxes))
    p = pad * fig.dpi
    return (int(np.floor(x0 - p)), int(np.floor(y0 - p)), int(np.ceil(x1 + p)),
            int(np.ceil(y1 + p)))


def _image(fig, items) -> tuple[bytes, int, int]:
    """PNG of the drawn figure as the user saved it; items are moved to its pixels."""
    rgba_HW4 = np.asarray(fig.canvas.buffer_rgba())
    region = _saved_region(fig, items)
    if region is None:
        return _encode(rgba_HW4), rgba_HW4.shape[1], rgba_HW4.shape[0]
    x0, y0, x1, y1 = region
    chart_trace.shift(items, -x0, -y0)
    height, width = rgba_HW4.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:  # crop, no redraw
        return _encode(rgba_HW4[y0:y1, x0:x1]), x1 - x0, y1 - y0
    inches = Bbox([[x0, height - y1], [x1, height - y0]]).transformed(fig.dpi_scale_trans.inverted())
    buf = io.BytesIO()
    fig._vs_savefig(buf, format="png", dpi=fig.dpi, bbox_inches=inches, pad_inches=0,
                    pil_kwargs={"compress_level": 1})
    png = buf.getvalue()
    with Image.open(io.BytesIO(png)) as im:
        return png, im.width, im.height


def _layout_warnings(caught, spans) -> list:
    out = []
    for w in caught:
        message = str(w.message)
        if any(word in message.lower() for word in _LAYOUT_WORDS):
            line = w.lineno if w.filename == chart_trace.USER_FILE else None
            out.append((message, spans[line] if line and line < len(spans) else None))
    return out


def run_chart(code: str, dpi: int) -> dict:
    """Execute, draw, trace and detect; the reply dict (never raises)."""
    linecache.cache[chart_trace.USER_FILE] = (len(code), None, code.splitlines(True),
                                              chart_trace.USER_FILE)
    chart_log.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(compile(code, chart_trace.USER_FILE, "exec"),
                 {"__name__": "__main__", "__builtins__": builtins})
        except SystemExit:
            pass
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything
            return {"ok": False, "error": user_traceback(exc)}
        try:
            fig = _pick_figure()
            fig.set_dpi(dpi)
            with chart_log.recording_texts():
                fig.canvas.draw()
            log = chart_log.finish(fig)
            items = chart_trace.extract(fig, fig.canvas.get_renderer(), code)
            chart_rc.add_causes(fig, items, code)
            png, width, height = _image(fig, items)
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "error": user_traceback(exc, "while drawing the figure:\n")}
    spans = chart_trace.line_spans(code)
    defects = detect_chart_defects(items, width, height, _layout_warnings(caught, spans))
    return {"ok": True, "png": base64.b64encode(png).decode(), "width": width,
            "height": height, "elements": [vars(i.element) for i in items],
            "defects": [vars(d) for d in defects], "chart_log": vars(log)}


def _die_with(worker_pid: int) -> None:
    """SIGKILL this chart process when its worker dies (before `confine` forbids ctypes).

    libc is a local: no loaded ctypes function is left for the chart to find. Dropping to
    `nobody` clears the setting again; that happens only under bwrap, whose PID namespace
    ends with the worker anyway.
    """
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker_pid:  # the worker died before the line above
        os._exit(1)


def _child(code: str, jobdir: str, write_fd: int, settings: dict) -> None:
    fd = chart_sandbox.confine(jobdir, write_fd, settings, settings["readable"])
    try:
        reply = run_chart(code, settings["dpi"])
    except BaseException as exc:  # noqa: BLE001 - e.g. MemoryError while drawing
        reply = {"ok": False, "error": f"chart process failed: {type(exc).__name__}: {exc}"}
    data = frame(reply)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _collect(read_fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything the child writes until EOF; (data, timed_out)."""
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            return b"", False
        chunks.append(chunk)


def _kill_leftovers(pid: int, own_pid_ns: bool) -> None:
    """Kill the chart's process group and, in our own PID namespace, every other process."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if own_pid_ns:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in (1, os.getpid()):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    while True:  # reap our zombies
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break


def run_job(code: str, settings: dict) -> dict:
    """Fork a confined child for one chart and turn whatever happens into a reply."""
    jobdir = chart_sandbox.prepare_jobdir(settings["tmp"], settings["drop_to_nobody"])
    read_fd, write_fd = os.pipe()
    gc.freeze()  # the child's collections skip the warm heap: no copy-on-write of it
    worker_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            _die_with(worker_pid)
            _child(code, jobdir, write_fd, settings)
        finally:
            os._exit(0)
    os.close(write_fd)
    data, timed_out = _collect(read_fd, time.monotonic() + settings["timeout_s"])
    os.close(read_fd)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    _kill_leftovers(pid, settings["own_pid_ns"])
    chart_sandbox.remove_jobdir(jobdir)
    if timed_out:
        return {"ok": False, "error": f"chart timed out after {settings['timeout_s']} s"}
    if len(data) > 4:
        try:
            return json.loads(data[4:])
        except ValueError:
            return {"ok": False, "error": "chart process wrote a malformed result"}
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        hint = " (CPU time limit)" if name == "SIGXCPU" else ""
        # SIGKILL came from outside (the OOM killer, an operator): the renderer retries once
        return {"ok": False, "error": f"chart process killed by {name}{hint}",
                "killed": name == "SIGKILL"}
    return {"ok": False, "error": f"chart process exited with status {status} and no result"}


def main() -> None:
    settings = json.loads(sys.argv[1])
    requests, replies = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    warm_up()
    replies.write(frame({"ready": True, "pid_ns": settings["own_pid_ns"]}))
    replies.flush()
    while (request := read_frame(requests)) is not None:
        reply = run_job(json.loads(request)["code"], settings)
        replies.write(frame(reply))
        replies.flush()


if __name__ == "__main__":
    main()
