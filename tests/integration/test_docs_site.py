"""The documentation site: built strictly with every tutorial executed, then checked page by page.

``python -m mkdocs build --strict`` runs the site's hooks (``docs/hooks/site.py``): each tutorial
(``docs/tutorials/NN_*.py``, jupytext percent format) is executed in a fresh kernel, a failing cell
failing the build, and the maths becomes MathML. Then, on the built site: every internal link and
image resolves, no raw ``$...$`` is left outside code, the pages with formulas carry MathML, every
tutorial shows its outputs and figures; and every page, served over HTTP, loads in headless Chromium
without a console message (an error, a failed resource, a warning). A few screenshots are written
for a person to look at (their folder is printed).
"""

from __future__ import annotations

import functools
import http.server
import importlib
import importlib.util
import json
import pkgutil
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from rnnlab.lab import results

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9]*.py"))
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
RAW_MATH = re.compile(r"(?<![\\$\w])\$[^$\s][^$\n]*?\$(?![\w$])|\$\$")
SHOTS = ["index.html", "tutorials/02_bptt.html", "tutorials/03_vanishing.html", "tutorials/04_lstm_gru.html",
         "api/nn.html"]


class Page(HTMLParser):
    """The links, image sources, element ids and text outside code of one HTML page."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.maths = 0
        self._code = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "iframe" and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag in ("img", "script") and attrs.get("src"):
            (self.images if tag == "img" else self.links).append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("code", "pre", "script", "style"):
            self._code += 1
        if tag == "math":
            self.maths += 1

    def handle_endtag(self, tag):
        if tag in ("code", "pre", "script", "style"):
            self._code -= 1

    def handle_data(self, data):
        if not self._code:
            self.text.append(data)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, str]:
    """The built site's folder and the build's log."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done.stderr


@pytest.fixture(scope="module")
def site(build) -> Path:
    return build[0]


@pytest.fixture(scope="module")
def pages(site) -> dict[str, Page]:
    return {p.relative_to(site).as_posix(): Page(p.read_text(encoding="utf-8")) for p in site.rglob("*.html")}


def _target(site: Path, page: str, link: str) -> tuple[Path, str] | None:
    """The file and fragment an internal link of ``page`` points at; None for an external one."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:")):
        return None
    path = unquote(parts.path)
    if path.startswith("/"):  # from the site's root (the 404 page's links)
        file = site / path.lstrip("/")
    else:
        file = (site / page).parent / path if path else site / page
    if file.is_dir():
        file = file / "index.html"
    return file.resolve(), parts.fragment


def test_the_site_has_every_tutorial_and_reference_page(pages):
    for script in TUTORIALS:
        assert f"tutorials/{script.stem}.html" in pages, script.name
    for name in ("index.html", "howto/cli.html", "api/nn.html", "api/cells.html", "api/training.html"):
        assert name in pages, name


def test_every_internal_link_and_image_resolves(site, pages):
    broken = []
    for name, page in pages.items():
        for link in page.links + page.images:
            target = _target(site, name, link)
            if target is None:
                continue
            file, fragment = target
            if not file.is_file():
                broken.append(f"{name}: {link}")
            elif fragment and file.suffix == ".html":
                other = pages.get(file.relative_to(site.resolve()).as_posix())
                if other is not None and fragment not in other.ids:
                    broken.append(f"{name}: {link} (no id {fragment!r})")
    assert not broken, "\n".join(broken[:30])


def test_the_maths_is_rendered_and_no_raw_formula_is_left(pages):
    for name, page in pages.items():
        raw = RAW_MATH.search(" ".join(page.text))
        assert raw is None, f"{name}: raw maths left: {raw.group(0)!r}"
    for name in ["index.html", "api/cells.html"] + [f"tutorials/{s.stem}.html" for s in TUTORIALS]:
        assert pages[name].maths > 0, f"{name} has formulas but no MathML"  # the cells' from their docstrings


def test_no_sphinx_role_is_left_in_the_api_reference(site, pages):
    for name in pages:
        html = (site / name).read_text(encoding="utf-8")
        left = re.search(r":(class|func|meth|mod|attr|data|exc|obj):(<code>|`)", html)
        assert left is None, f"{name}: a raw Sphinx role: {html[left.start():left.start() + 80]!r}"


def test_every_tutorial_shows_its_outputs_and_figures(site, pages):
    for script in TUTORIALS:
        html = (site / "tutorials" / f"{script.stem}.html").read_text(encoding="utf-8")
        source = script.read_text(encoding="utf-8")
        assert html.count("<pre") > source.count("# %%\n"), f"{script.name}: its outputs are missing"
        figures = source.count("plt.show()") + source.count("display(Image")
        images = pages[f"tutorials/{script.stem}.html"].images
        assert len(images) >= figures, f"{script.name}: {figures} figures made, {len(images)} shown"
        for image in images:
            assert (site / "tutorials" / image).stat().st_size > 2000, f"{script.name}: {image} is empty"


def test_the_results_page_shows_the_tables_of_the_records(site, pages):
    records = results.load(ROOT / "docs" / "results.json")
    assert json.loads((site / "results.json").read_text(encoding="utf-8")) == records  # linked from the page
    text = " ".join(pages["results.html"].text)
    rows = results.summary_table(records).splitlines()[2:]
    assert rows
    for row in rows:
        for cell in row.strip("| ").split(" | "):
            assert cell.replace("\\|", "|") in text, f"results.html lacks {cell!r} of the row {row!r}"


#: roles a docstring may leave unlinked (the build lists each one it cannot resolve), with the reason;
#: keep it empty: a role names a documented object, or the docstring says the name as plain code
UNRESOLVED_ALLOWED: dict[str, str] = {}
_UNRESOLVED = re.compile(r"unresolved role: (\S+): (\S+) in (\S+) \((.*)\)$", re.M)


def test_every_cross_reference_of_the_docstrings_resolves(build, pages):
    log = build[1]
    linked = re.search(r"cross-references: (\d+) linked, (\d+) outside rnnlab \(code\), (\d+) unresolved", log)
    assert linked is not None, log[-2000:]
    unresolved = _UNRESOLVED.findall(log)
    assert len(unresolved) == int(linked.group(3))
    left = [f"{page}: {name} in {context} ({why})" for page, name, context, why in unresolved
            if name not in UNRESOLVED_ALLOWED]
    assert not left, "\n".join(left)
    # and the links are there: as many autorefs links on the API pages as roles the build linked
    links = sum(1 for name, page in pages.items() if name.startswith("api/")
                for link in page.links if "#rnnlab." in link)
    assert links >= int(linked.group(1)) > 0


def test_every_public_name_has_an_entry_in_the_api_reference(site):
    """The names of every public module's ``__all__`` (the CLI's aside), each at its own heading, found
    where it is defined or, for a constant re-exported elsewhere, as the same object."""
    hooks = _hooks()
    documented = [i for page in (site / "api").glob("*.html")
                  for i in re.findall(hooks._HEADING, page.read_text(encoding="utf-8"))]
    reference = hooks._Reference(documented)
    import rnnlab

    missing = []
    for info in pkgutil.walk_packages(rnnlab.__path__, "rnnlab."):
        if info.name.startswith("rnnlab.cli") or "._" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            if not name.startswith("__") and reference.entry(f"{info.name}.{name}") is None:
                missing.append(f"{info.name}.{name}")
    assert len(documented) > 300
    assert not missing, "not in the API reference: " + ", ".join(missing)


def _hooks():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("rnnlab_docs_hooks", ROOT / "docs" / "hooks" / "site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("name", "context", "expected"), [
    ("forward", "rnnlab.nn.recurrent.Recurrent.backward", "rnnlab.nn.recurrent.Recurrent.forward"),  # its class
    ("Recurrent.forward", "rnnlab.nn.gradcheck", "rnnlab.nn.recurrent.Recurrent.forward"),  # a unique tail
    ("LSTM", "rnnlab.nn.bidirectional.Bidirectional", "rnnlab.nn.recurrent.LSTM"),  # unique among the documented
    ("Recurrent", "rnnlab.nn.sequential.stack", "rnnlab.nn.recurrent.Recurrent"),  # imported by its module
    ("~rnnlab.nn.LSTM", "", "rnnlab.nn.recurrent.LSTM"),  # a re-export: where it is defined
    ("rnnlab.nn.gradcheck.gradcheck", "rnnlab.nn.recurrent", "rnnlab.nn.gradcheck.gradcheck"),
])
def test_a_role_resolves_to_the_documented_object_it_means(name, context, expected):
    documented = ["rnnlab.nn.recurrent.Recurrent", "rnnlab.nn.recurrent.Recurrent.forward",
                  "rnnlab.nn.recurrent.Recurrent.backward", "rnnlab.nn.recurrent.LSTM",
                  "rnnlab.nn.gradcheck.gradcheck", "rnnlab.nn.bidirectional.Bidirectional"]
    assert _hooks()._Reference(documented).resolve(name, context) == (expected, "")


@pytest.mark.parametrize(("name", "reason"), [
    ("ValueError", "outside"), ("numpy.ndarray", "outside"),
    ("forward", "ambiguous: rnnlab.nn.recurrent.LSTM.forward, rnnlab.nn.recurrent.Recurrent.forward"),
    ("no_such_thing", "no such name"),
    ("rnnlab.nn.layers.Dense", "rnnlab.nn.layers.Dense is not in the API reference"),
])
def test_a_role_that_names_nothing_documented_stays_code_with_a_reason(name, reason):
    documented = ["rnnlab.nn.recurrent.Recurrent.forward", "rnnlab.nn.recurrent.LSTM.forward"]
    assert _hooks()._Reference(documented).resolve(name, "rnnlab.nn.gradcheck") == (None, reason)


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: no 'chromium' on PATH (apt-get install -y chromium)")
def test_every_page_loads_in_chromium_without_console_messages(pages, server, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")
    problems = []
    for name in sorted(pages):
        url = f"{server}/{name}"
        done = subprocess.run([CHROMIUM, *FLAGS, "--dump-dom", url], capture_output=True, text=True, timeout=120)
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        if done.returncode != 0 or "</html>" not in done.stdout:
            problems.append(f"{name}: Chromium exited {done.returncode}")
        problems += [f"{name}: {line.split('] ', 1)[-1]}" for line in console]
        if pages[name].maths and "<math" not in done.stdout:
            problems.append(f"{name}: no MathML in the rendered page")
    for name in SHOTS:
        shot = shots / f"{name.replace('/', '_')}.png"
        subprocess.run([CHROMIUM, *FLAGS, "--window-size=1280,1400", f"--screenshot={shot}", f"{server}/{name}"],
                       capture_output=True, timeout=120)
    print(f"screenshots of {', '.join(SHOTS)} in {shots}")
    assert not problems, "\n".join(problems[:30])
    assert all((shots / f"{n.replace('/', '_')}.png").stat().st_size > 10_000 for n in SHOTS)
