"""Open the built site in headless Chromium and check that headings and figures render.

Usage: ``python docs/scripts/check_site.py SITE_DIR OUT_DIR`` (``make docs-check`` runs it).

1. Installs Debian's ``chromium`` package if no Chromium is on the PATH (``apt-get``; needs root).
2. Copies the site to ``OUT_DIR/site`` and adds a small script to the checked pages that, after
   the page has loaded, writes on ``<html>`` how many images decoded (``naturalWidth > 0``) out of
   how many there are. The built site itself is not changed.
3. Serves the copy with ``python -m http.server`` on a free localhost port (stopped afterwards).
4. For each checked page: ``chromium --headless --screenshot`` and ``--dump-dom`` with a fresh
   profile, then asserts that the page's ``<h1>`` is in the DOM, that at least one image decoded
   and none failed, and that the screenshot is not blank.

Screenshots and DOM dumps stay in ``OUT_DIR`` for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

#: (page path in the site, expected h1 text)
PAGES = [
    ("index.html", "rs_metapeft"),
    ("tutorials/quickstart/index.html", "Offline quickstart"),
]
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
});
</script>"""


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


def check_page(binary: str, base: str, page: str, heading: str, out: Path) -> list[str]:
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
        if total == 0 or ok < total:
            problems.append(f"{page}: {ok} of {total} images decoded")
    if screenshot_is_blank(shot):
        problems.append(f"{page}: the screenshot {shot} is blank")
    print(f"{page}: h1 {'ok' if h1 else 'missing'}, images "
          f"{images.group(1) + '/' + images.group(2) if images else '?'}, screenshot {shot}")
    return problems


def main(argv: list[str]) -> int:
    """Check the site in ``argv[0]``, writing screenshots to ``argv[1]``."""
    if len(argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    site, out = Path(argv[0]), Path(argv[1])
    if not (site / "index.html").is_file():
        sys.exit(f"error: {site}/index.html not found; build the site first (make docs)")
    binary = find_chromium()
    if out.exists():
        shutil.rmtree(out)
    copy = out / "site"
    shutil.copytree(site, copy)
    for page, _ in PAGES:
        path = copy / page
        path.write_text(path.read_text().replace("</body>", PROBE + "</body>", 1))
    server, base = serve(copy)
    try:
        problems = [p for page, heading in PAGES
                    for p in check_page(binary, base, page, heading, out)]
    finally:
        server.terminate()
        server.wait(timeout=10)
    shutil.rmtree(copy)
    for problem in problems:
        print("error:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
