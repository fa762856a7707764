"""The DOM probe's own JavaScript world on a page: the DOM is the page's, the JS is not.

A page with JavaScript enabled shares its main world's built-ins and globals with anything
evaluated there, and keeps them across `set_content` (the window survives). In an isolated
world (CDP `Page.createIsolatedWorld`) the probe sees the same DOM through its own
`getBoundingClientRect`, `getComputedStyle`, `Range`, `JSON`, ..., which no page script can
reach.

A world lives as long as its document. Asking Chromium for it on every page costs a CDP round
trip (1–3 CPU-ms per page), so its context id is kept per CDP session and the world is made
again only when the id no longer works: the evaluation fails (the document is gone) or lands
in a context without this process's random token (a context id can be reused by another
renderer process after a cross-process navigation).
"""

import secrets
from weakref import WeakKeyDictionary

from playwright.async_api import Error as PlaywrightError

WORLD_NAME = "vsdpo-probe"
TOKEN = secrets.token_hex(16)  # the world's mark: a value page scripts cannot guess
_worlds: WeakKeyDictionary = WeakKeyDictionary()  # CDP session -> (main frame id, context id)


async def evaluate_isolated(cdp, expression: str, await_promise: bool = False) -> dict:
    """The `Runtime.evaluate` reply for `expression` (whose value must not be null), by value,
    in the probe's world on the page's current document; a promise is awaited if asked."""
    known = _worlds.get(cdp)
    if known is not None:
        guarded = f"globalThis.__vsdpo_world === '{TOKEN}' ? ({expression}) : null"
        try:
            reply = await _evaluate(cdp, guarded, known[1], await_promise)
            if "exceptionDetails" in reply or reply["result"].get("value") is not None:
                return reply
        except PlaywrightError:
            pass  # "Cannot find context with specified id": a new document
    context_id = await _create_world(cdp)
    marked = f"(globalThis.__vsdpo_world = '{TOKEN}', ({expression}))"
    return await _evaluate(cdp, marked, context_id, await_promise)


async def _evaluate(cdp, expression: str, context_id: int, await_promise: bool) -> dict:
    return await cdp.send("Runtime.evaluate", {"expression": expression, "contextId": context_id,
                                               "returnByValue": True,
                                               "awaitPromise": await_promise})


async def _create_world(cdp) -> int:
    """A fresh isolated world on the main frame, remembered for the CDP session."""
    known = _worlds.get(cdp)
    if known is None:  # the main frame's id is fixed for the life of the page
        tree = await cdp.send("Page.getFrameTree")
        known = (tree["frameTree"]["frame"]["id"], None)
    world = await cdp.send("Page.createIsolatedWorld", {
        "frameId": known[0], "worldName": WORLD_NAME, "grantUniversalAccess": False})
    _worlds[cdp] = (known[0], world["executionContextId"])
    return world["executionContextId"]
