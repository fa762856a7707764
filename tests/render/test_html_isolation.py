"""The DOM probe runs in its own JavaScript world: with JavaScript on, page scripts that patch
the built-ins it calls change nothing it measures; and the next artifact on the same page
starts in a new document, without the last one's globals, patches and workers, whenever it
could have run a script. Real Chromium (the shared `html_pool`, JavaScript on for `web`)."""

import asyncio

import pytest

from vsdpo.render import Artifact
from vsdpo.render.browser import could_run_script
from vsdpo.render.probe_world import _worlds, evaluate_isolated
from vsdpo.tasks import DOMAINS
from vsdpo.tasks.programs import solve, styles
from vsdpo.tasks.synthetic import generate_tasks

BOXES = """<html><body><div style="position:relative;height:120px">
<p style="position:absolute;top:10px;left:10px;margin:0;font-size:20px">Quarterly revenue</p>
<p style="position:absolute;top:16px;left:30px;margin:0;font-size:20px">Growth by region</p>
</div>{script}</body></html>"""

# The probe's measurements, quietly faked to say "nothing visible here, nothing overlaps".
FAKE = """<script>
Element.prototype.getBoundingClientRect = () => new DOMRect(0, 0, 0, 0);
Element.prototype.getClientRects = () => [];
Range.prototype.getClientRects = () => [];
const realStyle = window.getComputedStyle;
window.getComputedStyle = (el) => new Proxy(realStyle(el), {get: (cs, key) =>
  key === "visibility" ? "hidden" : key === "opacity" ? "0" : cs[key]});
window.__vsdpo_probe = {hidden: true};
</script>"""

# Says in the DOM whether the previous artifact's global survived in the page's own world.
REPORT = """<script>
document.getElementById("leak").textContent = "leak:" + typeof window.__vsdpo_probe;
</script>"""


def overlaps(result) -> list[tuple]:
    assert result.ok, result.error
    return [(d.bbox, tuple(d.spans)) for d in result.defects if d.kind == "overlap"]


def test_faked_measurements_do_not_hide_an_overlap_or_change_any_defect(html_pool):
    clean_code, faked_code = BOXES.format(script=""), BOXES.format(script=FAKE)
    clean, faked = html_pool.render([Artifact("web", clean_code), Artifact("web", faked_code)])
    ((_, spans),) = overlaps(faked)
    blamed = [faked_code[a:b] for a, b in spans]
    assert any(s.startswith("<p style") and "top:10px" in s for s in blamed)
    assert any(s.startswith("<p style") and "top:16px" in s for s in blamed)
    assert [(d.kind, d.bbox, d.spans, d.message) for d in faked.defects] == \
        [(d.kind, d.bbox, d.spans, d.message) for d in clean.defects]
    assert [e.bbox for e in faked.elements] == [e.bbox for e in clean.elements]


def test_globals_and_patches_left_by_one_artifact_do_not_reach_the_next_artifact(html_pool):
    slots = len(html_pool.pool.browsers.slots)
    first = html_pool.render([Artifact("web", BOXES.format(script=FAKE))] * slots)
    assert all(r.ok for r in first), [r.error for r in first]
    # Every slot's window held the fakes and the global; the next artifact adds no script of
    # its own that patches anything.
    code = BOXES.format(script='<p id="leak">?</p>' + REPORT)
    for result in html_pool.render([Artifact("web", code)] * slots):
        assert "leak:undefined" in [e.text for e in result.elements]  # a new document
        ((bbox, spans),) = overlaps(result)
        blamed = [code[a:b] for a, b in spans]
        assert any(s.startswith("<p style") and "top:10px" in s for s in blamed)
        assert any(s.startswith("<p style") and "top:16px" in s for s in blamed)
        assert bbox[2] - bbox[0] > 1 and bbox[3] - bbox[1] > 1


def test_a_page_that_breaks_json_stringify_still_renders(html_pool):
    code = "<p>hi</p><script>JSON.stringify = () => { throw new Error('no json'); };</script>"
    result = html_pool.one("web", code)
    assert result.ok, result.error
    assert "hi" in [e.text for e in result.elements]


def test_a_new_document_gets_a_new_world_that_page_scripts_still_cannot_reach(html_pool):
    script = "<script>JSON.stringify = null; window.__vsdpo_world = 'forged';</script>"
    seen = "document.querySelector('p').textContent + ' ' + typeof JSON.stringify"

    async def job(page, cdp):
        await page.set_content("<p>first</p>" + script)
        first = await evaluate_isolated(cdp, seen)
        world = _worlds[cdp][1]
        await page.goto("data:text/html,<p>second</p>" + script)  # a new document
        second = await evaluate_isolated(cdp, seen)
        return first, second, world != _worlds[cdp][1]

    replies = html_pool.loop.run_until_complete(html_pool.pool.browsers.run(job, True))
    first, second, remade = replies
    assert first["result"]["value"] == "first function"
    assert second["result"]["value"] == "second function" and remade


def test_a_slot_goes_back_to_the_pool_without_the_last_artifacts_workers(html_pool):
    """Dedicated workers live as long as their document, and `set_content` keeps the document:
    without a new one, these would spin on while the slot waits, and through later artifacts."""
    code = ("<p>w</p><script>for (let i = 0; i < 3; i++) new Worker(URL.createObjectURL("
            "new Blob(['for (;;) {}'])))</script>")
    browsers = html_pool.pool.browsers

    async def target_types() -> list[str]:
        cdp = await browsers.browsers[0].new_browser_cdp_session()
        targets = (await cdp.send("Target.getTargets"))["targetInfos"]
        await cdp.detach()
        return [t["type"] for t in targets]

    async def workers_after_the_reset() -> list[int]:
        (result,) = await html_pool.pool.render([Artifact("web", code)])
        assert result.ok, result.error
        await asyncio.gather(*browsers.resets)
        counts = [(await target_types()).count("worker")]
        for _ in range(120):  # a worker ends a moment (2 s here) after its document: ≤ 30 s
            if counts[-1] == 0:
                break
            await asyncio.sleep(0.25)
            counts.append((await target_types()).count("worker"))
        return counts

    counts = html_pool.loop.run_until_complete(workers_after_the_reset())
    assert counts[-1] == 0, counts


@pytest.mark.parametrize("html", [
    "<p>x</p><SCRIPT>1</SCRIPT>", '<img src="a.png" onerror="go()">', "<body onload=go()>",
    "<a href='JavaScript:go()'>a</a>", '<iframe srcdoc="<p>x</p>"></iframe>',
    '<meta http-equiv="refresh" content="1">', '<object data="a.svg"></object>',
    '<embed src="a.svg">'])
def test_a_script_or_a_refresh_is_seen_in_the_source(html):
    assert could_run_script(html)


def test_the_synthetic_pages_and_plain_text_run_no_script():
    pages = [solve(t, s) for t in generate_tasks(DOMAINS, 30, seed=0) if t.domain != "chart"
             for s in styles(t.domain)]
    assert len(pages) > 20 and not any(map(could_run_script, pages))
    assert not could_run_script("<p>Bonus = 5; prices on sale = low; Common=1</p>")


def test_only_a_document_that_could_run_a_script_is_replaced_before_the_next_job(
        html_pool, monkeypatch):
    browsers, released = html_pool.pool.browsers, []
    release = browsers._release
    monkeypatch.setattr(browsers, "_release", lambda slot: (released.append(slot), release(slot)))
    static, scripted = "<p>static</p>", "<p>x</p><script>window.x = 1</script>"
    results = html_pool.render([Artifact("web", static)] * 3)
    assert all(r.ok for r in results) and released == []
    assert html_pool.one("web", scripted).ok and len(released) == 1
