// One walk over the rendered DOM, returned as compact parallel arrays (one Runtime.evaluate,
// in the probe's isolated world: page scripts cannot patch the built-ins used here).
// Argument: [maxNodes, selectors]. Boxes are [x0, y0, x1, y1] in page pixels. Direct text is
// cut at 200 characters; `long` keeps the uncut text of the elements that were cut. Returns a JSON
// string: Playwright's structured serialisation of nested arrays is ~10x slower.
([maxNodes, selectors]) => {
  const SKIP = new Set(["HEAD", "SCRIPT", "STYLE", "META", "LINK", "TITLE", "NOSCRIPT",
                        "TEMPLATE", "BASE"]);
  const LEAF = new Set(["svg", "math", "select", "textarea", "iframe", "video", "canvas"]);
  const sx = window.scrollX, sy = window.scrollY;
  const r1 = (v) => Math.round(v * 10) / 10;
  // Computed colours are rgb()/rgba(), or oklch()/oklab()/color() (Tailwind v4's palette):
  // those are painted on a 1×1 canvas once per distinct string and read back as sRGB.
  const pixel = new OffscreenCanvas(1, 1).getContext("2d", {willReadFrequently: true});
  const painted = new Map();
  const rgba = (s) => {
    const m = s.match(/^rgba?\(([\d.]+),? ([\d.]+),? ([\d.]+)(?:[,/] ?([\d.]+))?\)$/);
    if (m) return [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]];
    if (!painted.has(s)) {
      let value = null;
      if (CSS.supports("color", s)) {
        pixel.clearRect(0, 0, 1, 1);
        pixel.fillStyle = s;
        pixel.fillRect(0, 0, 1, 1);
        const d = pixel.getImageData(0, 0, 1, 1).data;
        value = [d[0], d[1], d[2], r1(d[3] / 255)];
      }
      painted.set(s, value);
    }
    return painted.get(s);
  };
  const out = {tag: [], box: [], src: [], parent: [], text: [], trects: [], scroll: [],
               overflow: [], font: [], color: [], bg: [], bgimg: [], visible: [], display: [],
               fixed: [], long: {}, truncated: false};
  const index = new Map();
  const effBg = [], bgImg = [], clipped = [];
  const stack = [[document.documentElement, -1]];
  while (stack.length) {
    const [el, parent] = stack.pop();
    if (SKIP.has(el.tagName)) continue;
    if (out.tag.length >= maxNodes) { out.truncated = true; break; }
    if (el.getClientRects().length === 0 && el !== document.documentElement) continue;
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    const i = out.tag.length;
    const tag = el.tagName.toLowerCase();
    index.set(el, i);
    out.tag.push(tag);
    out.box.push([r1(r.left + sx), r1(r.top + sy), r1(r.right + sx), r1(r.bottom + sy)]);
    out.src.push(el.getAttribute("data-vsdpo-src") || "");
    out.parent.push(parent);
    out.scroll.push([el.scrollWidth, el.scrollHeight, el.clientWidth, el.clientHeight]);
    out.overflow.push([cs.overflowX, cs.overflowY, cs.whiteSpace]);
    out.font.push([r1(parseFloat(cs.fontSize) || 0), parseInt(cs.fontWeight) || 400]);
    out.color.push(rgba(cs.color));
    out.display.push(cs.display);
    // Screen-reader-only text: a box of at most 1px that clips (the `sr-only` pattern) paints
    // nothing, and neither does anything inside it (the root's and body's overflow applies to
    // the viewport instead).
    clipped.push((parent >= 0 && clipped[parent]) || (tag !== "html" && tag !== "body" &&
      (r.width <= 1 || r.height <= 1) &&
      (cs.clip !== "auto" || cs.clipPath !== "none" || cs.overflowX !== "visible")));
    out.visible.push(cs.visibility === "visible" && parseFloat(cs.opacity) > 0.05 && !clipped[i]);
    out.fixed.push((parent >= 0 && out.fixed[parent]) || cs.position === "fixed");
    // Effective background: own colour blended over the parent's (white at the root).
    const own = rgba(cs.backgroundColor) || [0, 0, 0, 0];
    const under = parent >= 0 ? effBg[parent] : [255, 255, 255];
    const a = own[3];
    effBg.push([0, 1, 2].map((k) => own[k] * a + under[k] * (1 - a)));
    bgImg.push(cs.backgroundImage !== "none" || (parent >= 0 && bgImg[parent] && a < 1));
    out.bg.push(effBg[i].map(Math.round));
    out.bgimg.push(bgImg[i]);
    // Direct text and the boxes of its lines.
    let text = "";
    const rects = [];
    for (const child of el.childNodes) {
      if (child.nodeType !== 3 || !child.data.trim()) continue;
      text += child.data;
      const range = document.createRange();
      range.selectNodeContents(child);
      for (const q of range.getClientRects()) {
        if (q.width > 0 && q.height > 0 && rects.length < 32)
          rects.push([r1(q.left + sx), r1(q.top + sy), r1(q.right + sx), r1(q.bottom + sy)]);
      }
    }
    text = text.replace(/\s+/g, " ").trim();
    out.text.push(text.slice(0, 200));
    if (text.length > 200) out.long[i] = text;  // uncut, for the Design2Code text score
    out.trects.push(rects);
    if (LEAF.has(tag)) continue;
    const kids = el.children;
    for (let k = kids.length - 1; k >= 0; k--) stack.push([kids[k], i]);
  }
  // Which elements each <style> rule matches (invalid selectors match nothing).
  out.matches = selectors.map((sel) => {
    try {
      return Array.from(document.querySelectorAll(sel), (e) => index.get(e))
        .filter((k) => k !== undefined);
    } catch (e) { return []; }
  });
  const d = document.documentElement;
  out.page = [d.scrollWidth, d.scrollHeight, window.innerWidth, window.innerHeight];
  return JSON.stringify(out);
}
