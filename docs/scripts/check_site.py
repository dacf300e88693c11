"""Check the built site: no raw Sphinx roles or file-name headings, and pages that render.

Usage: ``python docs/scripts/check_site.py SITE_DIR OUT_DIR`` (``make docs-check`` runs it).

1. Reads every page's HTML (no browser): a Sphinx role left as text (":func:fit") anywhere, a
   heading repeated on one page or a heading that is a bare file name (``stems_sentinel1``)
   outside the API reference fails the check.
2. Installs Debian's ``chromium`` package if no Chromium is on the PATH (``apt-get``; needs root).
3. Copies the site to ``OUT_DIR/site`` and adds a small script to the checked pages that, after
   the page has loaded, writes on ``<html>`` how many images decoded (``naturalWidth > 0``) out of
   how many there are, and which tables are wider than the space they have (clipped: the reader
   must scroll them sideways; collapsed blocks are opened first). The built site itself is not
   changed.
4. Serves the copy with ``python -m http.server`` on a free localhost port (stopped afterwards).
5. For each checked page (:data:`PAGES`): ``chromium --headless --screenshot`` and
   ``--dump-dom`` with a fresh profile, then asserts that the page's ``<h1>`` is in the DOM, that
   its images decoded (at least one where the page has figures), that no table is clipped
   (except on the pages of :data:`WIDE_TABLES_OK`), and that the screenshot is not blank.

Screenshots and DOM dumps stay in ``OUT_DIR`` for a person to look at.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

#: (page path in the site, expected h1 text, whether it must show at least one image)
PAGES = [
    ("index.html", "rs_metapeft", True),
    ("getting-started/index.html", "Getting started", False),
    ("tutorials/quickstart/index.html", "Offline quickstart", True),
    ("tutorials/geotiff-chips/index.html", "GeoTIFF", True),
    ("tutorials/tail-report/index.html", "tail report", True),
    ("guide/reports/index.html", "Reports", False),
    ("recipes/index.html", "Recipes", False),
    ("benchmarks/index.html", "Benchmarks", False),
    ("reference/api/index.html", "rs_metapeft.api", False),
    ("reference/reporting/index.html", "rs_metapeft.reporting", False),
    ("reference/data/index.html", "rs_metapeft.data", False),
    ("reference/inference/index.html", "rs_metapeft.inference", False),
]
#: Pages whose tables may be wider than the page (the reader scrolls them sideways), and why.
WIDE_TABLES_OK = {
    "benchmarks/index.html": "result matrices (a column per measure and its spread), generated "
                             "from benchmarks/results",
}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--hide-scrollbars", "--window-size=1280,1600",
    # Give images time to load and the probe script time to run before the dump.
    "--virtual-time-budget=10000", "--run-all-compositor-stages-before-draw",
]
PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.querySelectorAll("article img"));
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.documentElement.setAttribute("data-images", ok + "/" + imgs.length);
  // Measure what a reader sees once they open the collapsed blocks, too.
  document.querySelectorAll("article details").forEach(function (d) { d.open = true; });
  var clipped = Array.from(document.querySelectorAll("article table")).filter(function (t) {
    var box = t.closest(".md-typeset__scrollwrap") || t.parentElement;
    return t.scrollWidth > t.clientWidth + 2 || t.offsetWidth > box.clientWidth + 2;
  }).map(function (t) {
    var head = t.querySelector("th");
    return (head ? head.textContent.trim() : "table").slice(0, 40);
  });
  document.documentElement.setAttribute("data-clipped", clipped.join(" | "));
});
</script>"""

#: A Sphinx role left as text: ":func:" or ":class:" before a name or a code span.
RAW_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):(?:`|\w)")
#: A heading that is a bare file name: lower-case words joined by underscores.
FILE_NAME_HEADING = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)+$")


def _text(fragment: str) -> str:
    """The visible text of an HTML fragment (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def static_problems(page: str, text: str) -> list[str]:
    """What is wrong in one page's HTML without rendering it.

    Sphinx roles left as text (every page); headings repeated at one level and headings that are
    bare file names (outside the API reference, whose headings are object names).

    Example:
        >>> static_problems("a/index.html", "<p>See :func:<code>fit</code>.</p>")
        ['a/index.html: raw Sphinx role in the text: "See :func:fit."']
        >>> static_problems("b/index.html", "<h2 id=x>stems_sentinel1</h2><h2>T</h2><h2>T</h2>")
        ['b/index.html: heading "stems_sentinel1" is a file name', 'b/index.html: heading "T" \
appears 2 times']
    """
    body = text.split("<article", 1)[-1].split(">", 1)[-1] if "<article" in text else text
    problems = []
    visible = _text(re.sub(r"<(script|style)[^>]*>.*?</\1>", "", body, flags=re.DOTALL))
    for match in RAW_ROLE.finditer(visible):
        around = " ".join(visible[max(0, match.start() - 60):match.end() + 60].split())
        problems.append(f'{page}: raw Sphinx role in the text: "{around}"')
    if page.startswith("reference/"):
        return problems
    for level in ("h2", "h3"):
        found = re.findall(rf"<{level}[^>]*>(.*?)</{level}>", body, re.DOTALL)
        headings = [_text(h).replace("\u00b6", "").strip() for h in found]
        for heading, raw in zip(headings, found, strict=True):
            if FILE_NAME_HEADING.match(heading) and not raw.lstrip().startswith("<code"):
                problems.append(f'{page}: heading "{heading}" is a file name')
        for heading, n in Counter(headings).items():
            if n > 1:
                problems.append(f'{page}: heading "{heading}" appears {n} times')
    return problems


def check_static(site: Path) -> list[str]:
    """:func:`static_problems` of every page of the site."""
    return [problem for path in sorted(site.rglob("*.html"))
            for problem in static_problems(path.relative_to(site).as_posix(), path.read_text())]


def find_chromium() -> str:
    """Return a Chromium binary, installing Debian's package when there is none."""
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    print("chromium not found: installing Debian's chromium package", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "chromium"], check=True, env=env)
    if path := shutil.which("chromium"):
        return path
    sys.exit("error: apt-get installed chromium but no chromium binary is on the PATH")


def free_port() -> int:
    """Return a TCP port that is free on localhost now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start ``http.server`` on ``folder``; return the process and the base URL once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            urllib.request.urlopen(base, timeout=1).close()
            return server, base
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit(f"error: the local web server on port {port} did not answer")


def chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    """Run Chromium once with the check's flags and a fresh profile."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


def screenshot_is_blank(path: Path) -> bool:
    """Tell whether (almost) every pixel of the screenshot has the same colour."""
    from PIL import Image

    with Image.open(path) as image:
        colours = image.convert("RGB").resize((128, 160)).getcolors(maxcolors=128 * 160)
    return colours is None or max(n for n, _ in colours) > 0.99 * 128 * 160


def check_page(binary: str, base: str, page: str, heading: str, out: Path,
               needs_images: bool = True) -> list[str]:
    """Screenshot and DOM of one page; the problems found (empty when it rendered)."""
    stem = page.replace("/index.html", "").replace(".html", "").replace("/", "_") or "index"
    shot, dom_file = out / f"{stem}.png", out / f"{stem}.dom.html"
    url = base + page
    result = chromium(binary, f"--screenshot={shot}", url)
    if not shot.is_file():
        return [f"{page}: no screenshot ({result.stderr.strip()[-300:]})"]
    dom = chromium(binary, "--dump-dom", url).stdout
    dom_file.write_text(dom)
    problems = []
    h1 = re.search(r"<h1[^>]*>(.*?)</h1>", dom, re.DOTALL)
    if not h1 or heading not in re.sub(r"<[^>]+>", "", h1.group(1)):
        problems.append(f"{page}: no <h1> with {heading!r} in the rendered DOM")
    images = re.search(r'<html[^>]*\sdata-images="(\d+)/(\d+)"', dom)
    if not images:
        problems.append(f"{page}: the image probe did not run (page never finished loading?)")
    else:
        ok, total = int(images.group(1)), int(images.group(2))
        if (needs_images and total == 0) or ok < total:
            problems.append(f"{page}: {ok} of {total} images decoded")
    clipped = re.search(r'<html[^>]*\sdata-clipped="([^"]*)"', dom)
    if clipped and clipped.group(1) and page not in WIDE_TABLES_OK:
        problems.append(f"{page}: tables wider than the page (clipped): "
                        f"{html.unescape(clipped.group(1))}")
    if screenshot_is_blank(shot):
        problems.append(f"{page}: the screenshot {shot} is blank")
    print(f"{page}: h1 {'ok' if h1 else 'missing'}, images "
          f"{images.group(1) + '/' + images.group(2) if images else '?'}, clipped tables "
          f"{'none' if clipped and not clipped.group(1) else clipped.group(1) if clipped else '?'}"
          f", screenshot {shot}")
    return problems


def main(argv: list[str]) -> int:
    """Check the site in ``argv[0]``, writing screenshots to ``argv[1]``."""
    if len(argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    site, out = Path(argv[0]), Path(argv[1])
    if not (site / "index.html").is_file():
        sys.exit(f"error: {site}/index.html not found; build the site first (make docs)")
    problems = check_static(site)
    binary = find_chromium()
    if out.exists():
        shutil.rmtree(out)
    copy = out / "site"
    shutil.copytree(site, copy)
    for page, _, _ in PAGES:
        path = copy / page
        path.write_text(path.read_text().replace("</body>", PROBE + "</body>", 1))
    server, base = serve(copy)
    try:
        problems += [p for page, heading, needs_images in PAGES
                     for p in check_page(binary, base, page, heading, out, needs_images)]
    finally:
        server.terminate()
        server.wait(timeout=10)
    shutil.rmtree(copy)
    for problem in problems:
        print("error:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
