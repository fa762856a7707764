// Served before the Tailwind v4 browser build for `cdn.tailwindcss.com` (the v3 Play CDN).
// v3 pages set `tailwind.config = {theme: {extend: {...}}, darkMode}` after the script; v4
// reads its theme from CSS. The setter writes the config as a v4 `@theme` block in a
// `<style type="text/tailwindcss">`, which the build compiles like the page's own.
(() => {
  // v3 theme key -> v4 variable namespace
  const NAMESPACES = {
    colors: "color", fontFamily: "font", fontSize: "text", fontWeight: "font-weight",
    letterSpacing: "tracking", lineHeight: "leading", spacing: "spacing",
    borderRadius: "radius", boxShadow: "shadow", screens: "breakpoint",
    maxWidth: "container", animation: "animate",
  };

  function declarations(name, value, out) {
    if (Array.isArray(value)) {  // fontFamily: [names]; fontSize: [size, {lineHeight}]
      const names = value.filter((v) => typeof v === "string");
      out.push(`${name}: ${name.startsWith("--font-") ? names.join(", ") : names[0]};`);
      const lineHeight = value.find((v) => v && typeof v === "object")?.lineHeight;
      if (lineHeight) out.push(`${name}--line-height: ${lineHeight};`);
    } else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value))
        declarations(key === "DEFAULT" ? name : `${name}-${key}`, inner, out);
    } else if (typeof value === "string" || typeof value === "number") {
      out.push(`${name}: ${value};`);
    }
  }

  function themeCss(config) {
    const theme = config.theme || {}, lines = [];
    for (const [key, namespace] of Object.entries(NAMESPACES)) {
      if (theme[key] && typeof theme[key] === "object") {  // v3: replaces the defaults
        lines.push(`--${namespace}-*: initial;`);
        declarations(`--${namespace}`, theme[key], lines);
      }
      if (theme.extend && theme.extend[key]) declarations(`--${namespace}`, theme.extend[key], lines);
    }
    const dark = config.darkMode === "class" || (config.darkMode || [])[0] === "class"
      ? "@custom-variant dark (&:where(.dark, .dark *));\n" : "";
    return `${dark}@theme {\n${lines.join("\n")}\n}`;
  }

  let current = {};
  window.tailwind = {
    get config() { return current; },
    set config(value) {
      current = value || {};
      const style = document.createElement("style");
      style.type = "text/tailwindcss";
      style.textContent = themeCss(current);
      (document.head || document.documentElement).appendChild(style);
    },
  };
})();
