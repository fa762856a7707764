"""Fetch the offline asset cache: CDN libraries and web fonts, from the npm registry only.

Model-written pages link Tailwind, Google Fonts, icon fonts, Bootstrap and chart libraries
from CDNs; the render pool has no network, so `assets.py` answers those URLs from this cache.
Each package is the newest release of a pinned major, unpacked to
`<cache>/<name>@<major>/<path in the package>`, keeping only the files a page can load
(minified builds only: the resolver serves `x.min.css` for `x.css`).

    python -m vsdpo.render.assets_fetch [--cache .cache/assets] [--force]

Idempotent: a stamp holding the hash of `PACKAGES` + `FONTS` skips a second run.
"""

import argparse
import fnmatch
import hashlib
import io
import json
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "assets"
ALWAYS = ("package.json", "metadata.json")

# name@major → the files to keep (globs on the path inside the package)
PACKAGES = {
    "@tailwindcss/browser@4": ["dist/index.global.js"],
    # the v3 Play CDN script (`cdn.tailwindcss.com`), as npm republishes it, with its plugins
    "tailwindcss-cdn@3": ["tailwindcss*.js"],
    "tailwindcss@2": ["dist/tailwind.min.css"],  # v2 shipped a prebuilt stylesheet; v3 no
    "bootstrap@4": ["dist/css/*.min.css", "dist/js/*.min.js"],
    "bootstrap@5": ["dist/css/*.min.css", "dist/js/*.min.js"],
    "bootstrap-icons@1": ["font/*.min.css", "font/fonts/*.woff2"],
    "font-awesome@4": ["css/*.min.css", "fonts/*.woff2"],
    "@fortawesome/fontawesome-free@5": ["css/*.min.css", "webfonts/*.woff2", "js/*.min.js"],
    "@fortawesome/fontawesome-free@6": ["css/*.min.css", "webfonts/*.woff2", "js/*.min.js"],
    "chart.js@4": ["dist/chart.umd.min.js"],
    "echarts@5": ["dist/echarts*.min.js"],
    "jquery@3": ["dist/jquery*.min.js"],
    "@fontsource/material-icons@5": ["files/*-latin-400-normal.woff2"],
    "@fontsource/material-icons-outlined@5": ["files/*-latin-400-normal.woff2"],
    "@fontsource/material-icons-round@5": ["files/*-latin-400-normal.woff2"],
    "@fontsource-variable/material-symbols-outlined@5": ["files/*-latin-wght-normal.woff2"],
}
# Google Fonts families by fontsource id: the variable build (all weights, two files) when
# fontsource has one, else the static one (a file per weight). Latin subset only.
FONTS = ["inter", "roboto", "open-sans", "lato", "montserrat", "poppins", "playfair-display",
         "raleway", "nunito", "noto-sans", "roboto-mono", "rubik", "work-sans", "dm-sans",
         "lora", "oswald", "source-sans-3", "manrope", "space-grotesk", "outfit",
         "plus-jakarta-sans", "jetbrains-mono", "fira-code", "roboto-slab", "nunito-sans",
         "mulish", "quicksand", "ibm-plex-sans", "pt-sans", "ubuntu", "bebas-neue",
         "roboto-condensed", "source-code-pro"]
VARIABLE_FILES = ["files/*-latin-wght-normal.woff2", "files/*-latin-wght-italic.woff2"]
STATIC_FILES = [f"files/*-latin-{w}-normal.woff2" for w in (300, 400, 500, 600, 700)] + \
               [f"files/*-latin-{w}-italic.woff2" for w in (400, 700)]


def _get(url: str, accept: str = "*/*") -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def newest(name: str, major: str) -> tuple[str, str]:
    """The newest non-prerelease `major.x.y` of `name`, and its tarball URL."""
    doc = json.loads(_get(f"{REGISTRY}/{name}", "application/vnd.npm.install-v1+json"))
    releases = [v for v in doc["versions"] if v.split(".")[0] == major and "-" not in v]
    if not releases:
        raise LookupError(f"{name} has no {major}.x release on npm")
    version = max(releases, key=lambda v: tuple(int(p) for p in v.split(".")))
    return version, doc["versions"][version]["dist"]["tarball"]


def unpack(tarball: bytes, globs: list[str], dest: Path) -> int:
    """Write the kept files of an npm tarball under `dest`; the bytes written."""
    kept = 0
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        for member in tar.getmembers():
            path = member.name.split("/", 1)[-1]  # drop the tarball's top folder
            if not member.isfile() or ".." in path:
                continue
            if path in ALWAYS or any(fnmatch.fnmatch(path, g) for g in globs):
                if path.endswith(".map"):
                    continue
                target = dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
                kept += member.size
    return kept


def fetch(spec: str, globs: list[str], cache: Path) -> tuple[str, int, int]:
    """Fetch one `name@major`; (version, tarball bytes, kept bytes)."""
    name, major = spec.rsplit("@", 1)
    version, url = newest(name, major)
    tarball = _get(url)
    shutil.rmtree(cache / spec, ignore_errors=True)  # no files left from an older release
    return version, len(tarball), unpack(tarball, globs, cache / spec)


def fetch_font(font_id: str, cache: Path) -> tuple[str, str, int, int]:
    """A Google Fonts family: the variable build if fontsource has one, else the static."""
    try:
        spec = f"@fontsource-variable/{font_id}@5"
        return (spec, *fetch(spec, VARIABLE_FILES, cache))
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
    spec = f"@fontsource/{font_id}@5"
    return (spec, *fetch(spec, STATIC_FILES, cache))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--force", action="store_true", help="fetch even if the stamp matches")
    args = parser.parse_args(argv)
    stamp = args.cache / ".stamp"
    want = hashlib.sha256(json.dumps([PACKAGES, FONTS, VARIABLE_FILES, STATIC_FILES])
                          .encode()).hexdigest()[:16]
    if not args.force and stamp.is_file() and stamp.read_text() == want:
        return
    start, versions, downloaded, kept = time.monotonic(), {}, 0, 0
    jobs = [(lambda s=s, g=g: (s, *fetch(s, g, args.cache))) for s, g in PACKAGES.items()]
    jobs += [(lambda f=f: fetch_font(f, args.cache)) for f in FONTS]
    for job in jobs:
        spec, version, got, wrote = job()
        versions[spec] = version
        downloaded, kept = downloaded + got, kept + wrote
        print(f"assets: {spec:48s} {version:10s} {got / 1e6:6.2f} MB → {wrote / 1e6:5.2f} MB",
              file=sys.stderr)
    (args.cache / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    stamp.write_text(want)
    print(f"assets: {len(versions)} packages, downloaded {downloaded / 1e6:.1f} MB, kept "
          f"{kept / 1e6:.1f} MB in {time.monotonic() - start:.0f} s → {args.cache}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
