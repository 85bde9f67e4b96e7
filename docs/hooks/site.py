"""MkDocs hooks of rnnlab's documentation site (``mkdocs.yml`` names this file under ``hooks``).

What the site needs that MkDocs does not do by itself:

- **Tutorials that run.** Each ``docs/tutorials/NN_name.py`` is a notebook kept as a plain-text
  script (jupytext's percent format). Every build executes it from top to bottom in a fresh kernel
  (nbclient; a failing cell fails the build), converts it to Markdown with its outputs (nbconvert)
  and adds the page and its figures to the site, with the files it wrote into ``published/`` of its
  working directory (beside the page, in ``NN_name_files/``). ``RNNLAB_DOCS_EXECUTE=0`` skips the
  execution for a quick look at the text (outputs are then missing; CI always executes).
- **The command-line reference**, written from the parser the ``rnnlab`` command itself builds
  (:func:`rnnlab.cli.build_parser`), so it cannot drift from the code.
- **The results from their records.** The summary and ablation tables of ``results.md`` are written
  from ``docs/results.json`` (:mod:`rnnlab.lab.results`) when the page is built, so the site shows the
  records even before ``python -m rnnlab.lab.results --write docs/results.md`` has refreshed the file
  (a test checks that the file agrees too); ``results.json`` itself is on the site beside the page.
- **Maths without JavaScript.** ``$...$`` (inline) and ``$$...$$`` (display) in Markdown, outside
  code, become MathML at build time (latex2mathml), which browsers render natively: no script, no
  network, and nothing left for the reader's browser to typeset. The docstrings' maths (the cells'
  equations) comes through mkdocstrings kept whole by pymdownx.arithmatex and becomes MathML too.
- **Cross-references from the docstrings' Sphinx roles.** ``:class:`~rnnlab.nn.state.X```, and short
  ones such as ``:meth:`fit``` or ``:class:`Recurrent```, link to the object's entry in the API
  reference: a short name is looked up from the docstring's own object outwards (its class, module,
  package, and what the module imports), then among the documented names that end with it, if one
  does. A name outside rnnlab (``ValueError``, NumPy's) stays code; one that is unknown or
  ambiguous stays code too and is listed in the build's output (``unresolved role: ...``), which
  ``tests/integration/test_docs_site.py`` checks is empty.
"""

from __future__ import annotations

import builtins
import functools
import html
import importlib
import io
import os
import re
import tempfile
import types
import warnings
from contextlib import redirect_stdout
from pathlib import Path

from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File

TUTORIALS = "tutorials"
_MATH = re.compile(r"(?<![\\$])\$\$(.+?)\$\$|(?<![\\$\w])\$(?!\s)([^$\n]+?)(?<!\s)\$(?![\w$])", re.S)
_CODE = re.compile(r"(^```.*?^```[ \t]*$|^~~~.*?^~~~[ \t]*$|`[^`\n]+`)", re.S | re.M)
_TOKEN = "RNNLABMATH{}X"
_log = get_plugin_logger("rnnlab")  # INFO lines in the build's output; a WARNING fails --strict


# ----------------------------------------------------------------------------------------- tutorials
PUBLISHED = "published"  # what a tutorial writes into this folder of its working directory is on the site


def _execute(script: Path) -> tuple[str, dict[str, bytes]]:
    """The tutorial's Markdown (with outputs) and its files ``{relative path: bytes}``: the figures of its
    outputs, and what it wrote into ``published/`` (an activation viewer page, say), under ``NN_name_files/``."""
    import jupytext
    from nbconvert import MarkdownExporter

    notebook = jupytext.read(script)
    stem = script.stem
    published = {}
    if os.environ.get("RNNLAB_DOCS_EXECUTE", "1") != "0":
        from nbclient import NotebookClient

        with tempfile.TemporaryDirectory() as work:  # the tutorial's own files land here, not in docs/
            NotebookClient(notebook, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": work}}).execute()
            folder = Path(work) / PUBLISHED
            published = {f"{stem}_files/{f.relative_to(folder).as_posix()}": f.read_bytes()
                         for f in sorted(folder.rglob("*")) if f.is_file()}
    body, resources = MarkdownExporter().from_notebook_node(
        notebook, resources={"output_files_dir": f"{stem}_files", "unique_key": stem})
    return body, {**dict(resources.get("outputs", {})), **published}


def _cli_reference() -> str:
    from rnnlab.cli import build_parser

    parser = build_parser()
    lines = ["# Command line reference", "",
             "Written from the parser of the `rnnlab` command itself when the site is built, so it is "
             "always the installed version's. `rnnlab COMMAND --help` prints the same text.", "",
             "```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._subparsers._group_actions:  # the sub-commands, in registration order
        for name, sub in action.choices.items():
            lines += [f"## `rnnlab {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


_REPO_LINK = re.compile(r"\]\(\.\./((?:benchmarks|examples)/[^)#\s]+)\)")
REPO = "repo"  # where files of the repository that pages link to (figures, results) land in the site


def _repo_files(docs: Path) -> set[str]:
    """Files outside ``docs/`` that the pages link to as ``../benchmarks/...`` or ``../examples/...``."""
    found = set()
    for page in docs.rglob("*.md"):
        found.update(m.group(1) for m in _REPO_LINK.finditer(page.read_text(encoding="utf-8")))
    return found


def on_files(files, config):
    docs = Path(config["docs_dir"])
    data = os.environ.get("RNNLAB_DATA")
    if data and not os.path.isabs(data):  # the tutorials run in temporary directories: anchor it here
        os.environ["RNNLAB_DATA"] = os.path.abspath(data)
    for relative in sorted(_repo_files(docs)):
        source = docs.parent / relative
        if source.is_file():  # a missing one stays a broken link, which the strict build reports
            files.append(File.generated(config, f"{REPO}/{relative}", abs_src_path=str(source)))
    for script in sorted((docs / TUTORIALS).glob("[0-9]*.py")):
        body, figures = _execute(script)
        files.append(File.generated(config, f"{TUTORIALS}/{script.stem}.md", content=body))
        for name, data in figures.items():
            files.append(File.generated(config, f"{TUTORIALS}/{name}", content=data))
    with redirect_stdout(io.StringIO()):
        reference = _cli_reference()
    files.append(File.generated(config, "howto/cli.md", content=reference))
    readme = (docs.parent / "README.md").read_text(encoding="utf-8")
    for heading, page in README_PAGES.items():
        files.append(File.generated(config, page, content=_readme_section(readme, heading)))
    return files


#: README sections that are also pages of the site (one source, so the two cannot drift apart)
README_PAGES = {"Train on your own data": "howto/own-data.md", "Deploy and exchange": "howto/deploy.md"}


def _readme_section(readme: str, heading: str) -> str:
    """The README's ``## heading`` section as a page: its subsections one level up, links into docs/ fixed."""
    start = readme.index(f"\n## {heading}\n")
    end = readme.find("\n## ", start + 1)
    body = readme[start + 1:end if end != -1 else None]
    body = "# " + body[3:]
    body = re.sub(r"^###", "##", body, flags=re.M)
    return re.sub(r"\]\(docs/", "](../", body)


# ----------------------------------------------------------------------------------------- results
RESULTS_PAGE, RESULTS_RECORDS = "results.md", "results.json"  # the page and, beside it, its records


# ----------------------------------------------------------------------------------------- maths
def _mathml(latex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    return convert(latex.strip(), display="block" if display else "inline")


def on_page_markdown(markdown, page, config, files):
    """Write the results page's tables from their records; replace the maths by placeholders (Markdown would
    read ``_`` and ``*`` inside it), kept on the page."""
    stash: list[str] = []
    if page.file.src_uri == RESULTS_PAGE:
        from rnnlab.lab import results

        markdown = results.rewrite(markdown, results.load(Path(config["docs_dir"]) / RESULTS_RECORDS))

    def replace_math(text: str) -> str:
        def one(match):
            display = match.group(1) is not None
            stash.append(_mathml(match.group(1) if display else match.group(2), display))
            return _TOKEN.format(len(stash) - 1)
        return _MATH.sub(one, text)

    # links into the repository (../benchmarks/..., ../examples/...) point at the copies under repo/
    depth = page.file.src_uri.count("/")
    markdown = _REPO_LINK.sub(lambda m: "](" + "../" * depth + f"{REPO}/{m.group(1)})", markdown)
    pieces = _CODE.split(markdown)  # odd pieces are code: left alone
    markdown = "".join(piece if i % 2 else replace_math(piece) for i, piece in enumerate(pieces))
    page.meta["_rnnlab_math"] = stash
    return markdown


# ----------------------------------------------------------------------------------------- cross-references
_ROLE = r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([^<]+)</code>"
_HEADING = r'<h[1-6] id="(rnnlab(?:\.\w+)*)" class="doc doc-heading"'
_SCAN = re.compile(f"{_HEADING}|{_ROLE}")
_MARK = re.compile(r'<rnnlab-role name="([^"]*)" context="([^"]*)">(.*?)</rnnlab-role>')
_MISSING = object()
#: what the last build did with the docstrings' roles (``on_env`` fills it; its log lines say the same)
ROLES: dict[str, list] = {"linked": [], "outside": [], "unresolved": []}


def _mark_roles(content: str) -> str:
    """Each Sphinx role of a docstring (``:class:`~a.b.C```, ``:meth:`fit```) as a marker holding the name
    and its context: the object whose docstring it is in, i.e. the last API heading above it."""
    context = ""

    def one(match):
        nonlocal context
        if match.group(1) is not None:
            context = match.group(1)
            return match.group(0)
        short, name = match.group(2), html.unescape(match.group(3))
        shown = name.rsplit(".", 1)[-1] if short else name
        return (f'<rnnlab-role name="{html.escape(name)}" context="{context}">'
                f"<code>{html.escape(shown, quote=False)}</code></rnnlab-role>")
    return _SCAN.sub(one, content)


def _lookup(path: str):
    """The object a dotted path names (the longest importable module, then attributes), or ``_MISSING``."""
    parts = path.split(".")
    with warnings.catch_warnings():  # the 0.1.0 module paths warn when they are read
        warnings.simplefilter("ignore")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                return _MISSING
            return obj
    return getattr(builtins, path, _MISSING)


def _canonical(obj) -> str | None:
    """Where a module, class or function is defined (``module.qualname``); None for other objects."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    obj = getattr(obj, "fget", obj)  # a property: its getter
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
        return f"{module}.{qualname}"
    return None


class _Reference:
    """The objects the API reference documents (its headings' ids) and how a role's name finds one."""

    def __init__(self, documented: list[str]):
        self.documented = set(documented)
        self.by_tail: dict[str, list[str]] = {}  # "fit", "Sequential.fit", ... -> full identifiers
        for identifier in documented:
            parts = identifier.split(".")
            for i in range(1, len(parts)):
                self.by_tail.setdefault(".".join(parts[i:]), []).append(identifier)

    def resolve(self, name: str, context: str) -> tuple[str | None, str]:
        """``(identifier, "")`` for a documented object; ``(None, "outside")`` for one outside rnnlab (a
        builtin, NumPy, ...), left as code; ``(None, reason)`` when the name is unknown or ambiguous.

        A short name is looked for relative to the docstring's object first (a method of its class, a name
        of its module or package, what that module imports), then among the documented objects whose
        dotted path ends with it, if exactly one does."""
        name = name.strip().lstrip("~.")
        if name.startswith("rnnlab."):
            scopes = [""]
        else:
            parts = context.split(".") if context else []
            scopes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        for scope in scopes:
            path = f"{scope}.{name}" if scope else name
            if path in self.documented:
                return path, ""
            obj = _lookup(path)
            if obj is not _MISSING:
                return self._documented(obj, path)
        candidates = self.by_tail.get(name, [])
        if len(candidates) == 1:
            return candidates[0], ""
        if candidates:
            return None, "ambiguous: " + ", ".join(sorted(candidates))
        obj = _lookup(name)
        if obj is not _MISSING and not (_canonical(obj) or "").startswith("rnnlab"):
            return None, "outside"
        return None, "no such name" if obj is _MISSING else f"{_canonical(obj) or name} is not in the API reference"

    def entry(self, path: str) -> str | None:
        """The identifier of the entry that documents the object at ``path`` (where it is defined, or for
        a constant re-exported elsewhere, the documented name that is the same object); None if none does."""
        if path in self.documented:
            return path
        obj = _lookup(path)
        canonical = None if obj is _MISSING else _canonical(obj)
        if canonical in self.documented:
            return canonical
        same = [i for i in self.by_tail.get(path.rsplit(".", 1)[-1], []) if obj is not _MISSING and _lookup(i) is obj]
        return same[0] if len(same) == 1 else None

    def _documented(self, obj, path: str) -> tuple[str | None, str]:
        canonical = _canonical(obj)
        if canonical is not None and not canonical.startswith("rnnlab."):
            return None, "outside"
        identifier = self.entry(path)
        if identifier is not None:
            return identifier, ""
        if canonical is None and not path.startswith("rnnlab."):
            return None, "outside"  # a value of another library that a module imported
        return None, f"{canonical or path} is not in the API reference"


def on_env(env, config, files):
    """Link the marked roles, now that every page is rendered and every documented object is known.

    Runs before mkdocs-autorefs' ``on_env`` (priority -50), which turns the ``<autoref>`` elements into
    links. A role that names nothing documented stays code and is reported (``ROLES``, and the log)."""
    pages = [f.page for f in files if f.page is not None and f.page.content]
    documented = [i for page in pages for i in re.findall(_HEADING, page.content)]
    reference = _Reference(documented)
    for value in ROLES.values():
        value.clear()

    def link(page, match):
        name, context, shown = html.unescape(match.group(1)), match.group(2), match.group(3)
        identifier, reason = reference.resolve(name, context)
        if identifier is not None:
            ROLES["linked"].append((page, name, identifier))
            return f'<autoref identifier="{html.escape(identifier)}">{shown}</autoref>'
        ROLES["outside" if reason == "outside" else "unresolved"].append((page, name, context or "-", reason))
        return shown

    for page in pages:
        page.content = _MARK.sub(functools.partial(link, page.file.src_uri), page.content)
    _log.info("the docstrings' cross-references: %d linked, %d outside rnnlab (code), %d unresolved",
              len(ROLES["linked"]), len(ROLES["outside"]), len(ROLES["unresolved"]))
    for page, name, context, reason in ROLES["unresolved"]:
        _log.info("unresolved role: %s: %s in %s (%s)", page, name, context, reason)
    return env


_ARITHMATEX = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>'
                         r'|<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)


def _docstring_maths(content: str) -> str:
    """The docstrings' ``$...$`` and ``$$...$$`` (which pymdownx.arithmatex kept whole through Markdown) as MathML."""
    def one(match):
        display = match.group(2) is not None
        return _mathml(html.unescape(match.group(2) if display else match.group(1)), display)
    return _ARITHMATEX.sub(one, content)


def on_page_content(content, page, config, files):
    content = _mark_roles(content)  # linked in on_env, once every page's objects are known
    content = _docstring_maths(content)
    stash = page.meta.get("_rnnlab_math", [])
    for i, mathml in enumerate(stash):
        content = content.replace(_TOKEN.format(i), mathml)
    if re.search(r"RNNLABMATH\d+X", content):
        raise ValueError(f"{page.file.src_uri}: a formula was not placed ({html.escape(content[:80])}...)")
    return content
