"""The activation page rendered for real, in headless Chromium (Debian's ``chromium`` package).

``rnnlab.viewer.inspect`` writes the page of a small character LSTM run; Chromium loads it with a URL
fragment, runs its script, and dumps the DOM (``--dump-dom``) or takes a screenshot. The spans'
background colours must be those computed here from the layers' own ``activations()`` for the
fragment's selection; another fragment, or the page's own controls, must recolour them; and the
screenshot must show coloured text. Five Chromium launches, a second or two each.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rnnlab.data.text import UNK, Vocabulary
from rnnlab.io import files as io
from rnnlab.lab import viewer
from rnnlab.lab.config import parse_config, to_toml
from rnnlab.lab.tasks import build_model

CHROMIUM = shutil.which("chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium to render the page: no 'chromium' on PATH "
                                                "(Debian: apt-get install -y chromium)"),
]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n")

# the documented colour rule: white at 0, these end colours at full scale, channels rounded half up
ENDS = {"positive": (230, 85, 60), "negative": (60, 130, 210), "unit": (40, 160, 80)}


def expected_colour(v, scale, extent=1.0):
    if scale == "unit":
        s, end = min(max(v, 0.0), 1.0), ENDS["unit"]
    else:
        u = v if scale == "signed" else v / extent
        u = min(max(u, -1.0), 1.0)
        s, end = abs(u), ENDS["positive" if u >= 0 else "negative"]
    return tuple(math.floor(255 + s * (e - 255) + 0.5) for e in end)


class Dom(HTMLParser):
    """Token spans (attributes, text), the ranking's unit buttons, and the text of a few elements by id."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.spans, self.buttons, self.by_id, self._open = [], [], {}, []
        self.feed(source)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and "tok" in (attrs.get("class") or "").split():
            self.spans.append({**attrs, "text": ""})
        if tag == "button" and "data-unit" in attrs:
            self.buttons.append(attrs)
        if attrs.get("id") in ("legend-text", "notice", "units-count"):
            self.by_id[attrs["id"]] = {**attrs, "text": ""}
        self._open.append((tag, attrs))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        for tag, attrs in self._open:
            if tag == "span" and "tok" in (attrs.get("class") or "").split():
                self.spans[-1]["text"] += data
            if attrs.get("id") in self.by_id:
                self.by_id[attrs["id"]]["text"] += data


def background(span) -> tuple[int, int, int]:
    match = re.search(r"background-color:\s*rgb\((\d+), (\d+), (\d+)\)", span.get("style") or "")
    assert match, f"span {span.get('data-i')} has no background colour: {span.get('style')!r}"
    return tuple(int(g) for g in match.groups())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-layer character LSTM run (untrained, seeded weights), its page, and the layers' own activations."""
    root = tmp_path_factory.mktemp("viewer")
    config = parse_config('[data]\ntask = "language_model"\ndataset = "tiny_shakespeare"\nlevel = "char"\n'
                          '[model]\nhidden_size = 16\nnum_layers = 2\nseed = 3\n[train]\nepochs = 1\n')
    vocab = Vocabulary(specials=(UNK,)).fit([list(TEXT)])
    model = build_model(config.model, inputs="ids", n_inputs=len(vocab), n_outputs=len(vocab), sequence_output=True)
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(to_toml(config), encoding="utf-8")
    (run_dir / "vocab.json").write_text(vocab.to_json(), encoding="utf-8")
    io.save(model, run_dir / "model")
    page = viewer.inspect(run_dir, TEXT)
    loaded = io.load(run_dir / "model")
    loaded(np.array([vocab.encode(list(TEXT))]))
    acts = [loaded.layers[i].activations() for i in (1, 2)]  # OneHot, LSTM, LSTM, Dense
    return {"dir": root, "page": page, "acts": [{k: v[0].astype(np.float64) for k, v in a.items()} for a in acts]}


def chromium(run, *args) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={run['dir'] / 'profile'}", *args]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"Chromium did not finish within 60 s: {' '.join(command)}\nstderr:\n{(exc.stderr or '')[-3000:]}")
    if proc.returncode != 0:
        pytest.fail(f"Chromium failed with exit code {proc.returncode}: {' '.join(command)}\n"
                    f"stderr:\n{proc.stderr[-3000:]}")
    return proc


def dump(run, fragment: str) -> Dom:
    proc = chromium(run, "--dump-dom", run["page"].as_uri() + fragment)
    dom = Dom(proc.stdout)
    assert len(dom.spans) == len(TEXT), f"the DOM Chromium dumped holds {len(dom.spans)} token spans\nstderr:\n" \
                                        f"{proc.stderr[-3000:]}"
    return dom


def check_colours(dom: Dom, values: np.ndarray, scale: str, what: str) -> None:
    extent = np.abs(values).max()
    spread = values.max() - values.min()
    for t, span in enumerate(dom.spans):
        assert abs(float(span["data-value"]) - values[t]) <= spread / 510 + 1e-3 * extent, (what, t)
        got, want = background(span), expected_colour(values[t], scale, extent)
        assert np.abs(np.subtract(got, want)).max() <= 1, f"{what}, step {t} ({TEXT[t]!r}): {got} != {want}"


def test_the_fragment_chooses_what_the_spans_show(run):
    first = dump(run, "#layer=0&quantity=c&unit=3")
    assert [s["text"] for s in first.spans] == [ch.replace("\n", "\u21b5\n") for ch in TEXT]
    c = run["acts"][0]["c"][:, 3]  # (T,)
    check_colours(first, c, "unbounded", "layer 0, c[3]")
    legend = first.by_id["legend-text"]["text"]
    assert "unbounded" in legend
    assert float(re.search(r"largest \|c\| over the text, (\S+)$", legend).group(1)) == pytest.approx(np.abs(c).max(),
                                                                                                  rel=1e-3)
    std = run["acts"][0]["c"].std(axis=0)
    assert int(first.buttons[0]["data-unit"]) == int(np.argmax(std))
    assert first.by_id["units-count"]["text"] == "of 0\u201315"

    second = dump(run, "#layer=1&quantity=f")  # no unit: the one whose forget gate varies most
    f = run["acts"][1]["f"]
    unit = int(np.argmax(f.std(axis=0)))
    check_colours(second, f[:, unit], "unit", f"layer 1, f[{unit}]")
    assert "[0, 1]" in second.by_id["legend-text"]["text"]
    changed = sum(background(a) != background(b) for a, b in zip(first.spans, second.spans))
    assert changed > len(TEXT) // 2


def test_a_fragment_that_is_not_on_the_page_shows_the_default_and_says_so(run):
    dom = dump(run, "#layer=7&quantity=c&unit=3")
    notice = dom.by_id["notice"]
    assert "hidden" not in notice and "#layer=7&quantity=c&unit=3 is not a selection on this page" in notice["text"]
    static = Dom(run["page"].read_text(encoding="utf-8"))  # the colours written into the file, before any script
    h = run["acts"][1]["h"]
    unit = int(np.argmax(h.std(axis=0)))  # the default: the last layer's most varying unit of h
    check_colours(static, h[:, unit], "signed", f"layer 1, h[{unit}] (in the file)")
    assert [background(s) for s in dom.spans] == [background(s) for s in static.spans]


# appended to a copy of the page: works its controls as a reader would, and notes the address after each
CLICKS = """<script>
(function () {
  function set(id, value, event) {
    var control = document.getElementById(id);
    control.value = value;
    control.dispatchEvent(new Event(event));
  }
  set("layer", "1", "change");
  set("quantity", "o", "change");
  set("unit", "9", "input");
  document.body.setAttribute("data-after-unit", location.hash);
  document.querySelectorAll("#ranking button")[1].click();
  document.body.setAttribute("data-after-click", location.hash);
})();
</script>
</body>"""


def test_the_controls_recolour_the_text_and_rewrite_the_address(run):
    harness = run["page"].with_name("controls.html")
    harness.write_text(run["page"].read_text(encoding="utf-8").replace("</body>", CLICKS), encoding="utf-8")
    proc = chromium(run, "--dump-dom", harness.as_uri() + "#layer=0&quantity=c&unit=3")
    body = re.search(r"<body([^>]*)>", proc.stdout).group(1)
    assert 'data-after-unit="#layer=1&amp;quantity=o&amp;unit=9"' in body, f"{body}\nstderr:\n{proc.stderr[-3000:]}"
    o = run["acts"][1]["o"]
    second = int(np.argsort(-o.std(axis=0), kind="stable")[1])  # the second unit of the list by variance
    assert f'data-after-click="#layer=1&amp;quantity=o&amp;unit={second}"' in body
    dom = Dom(proc.stdout)
    check_colours(dom, o[:, second], "unit", f"layer 1, o[{second}]")
    assert [b.get("class") for b in dom.buttons[:2]] == [None, "current"]


def test_the_screenshot_shows_coloured_text(run):
    image = screenshot(run)
    assert image.shape[:2] == (700, 1000)
    assert image[..., :3].std() > 0.05, "the screenshot is blank"
    text = image[175:, :700, :3]  # below the header, left of the list of units: the text
    coloured = text[(text.max(axis=2) - text.min(axis=2)) > 0.12]  # (N, 3) pixels that are not white, grey or black
    assert len(coloured) > 0.01 * text.shape[0] * text.shape[1], f"only {len(coloured)} coloured pixels in the text"
    shades = {tuple(p) for p in np.round(coloured * 16).astype(int)}
    assert len(shades) >= 8, f"only {len(shades)} distinct colours in the text's backgrounds"


def screenshot(run) -> np.ndarray:
    """The page at 1000 x 700 as an image (H, W, 3 or 4)."""
    import matplotlib.image

    png = Path(run["dir"]) / "page.png"
    url = run["page"].as_uri() + "#layer=1&quantity=c"  # scaled by the unit's largest |c|: full colours
    chromium(run, f"--screenshot={png}", "--window-size=1000,700", "--hide-scrollbars", url)
    assert png.is_file() and png.stat().st_size > 1000, f"no screenshot at {png}"
    return matplotlib.image.imread(png)
