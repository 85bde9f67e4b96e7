"""MkDocs hooks of rnnlab's documentation site (``mkdocs.yml`` names this file under ``hooks``).

What the site needs that MkDocs does not do by itself:

- **Tutorials that run.** Each ``docs/tutorials/NN_name.py`` is a notebook kept as a plain-text
  script (jupytext's percent format). Every build executes it from top to bottom in a fresh kernel
  (nbclient; a failing cell fails the build), converts it to Markdown with its outputs (nbconvert)
  and adds the page and its figures to the site. ``RNNLAB_DOCS_EXECUTE=0`` skips the execution for a
  quick look at the text (outputs are then missing; CI always executes).
- **The command-line reference**, written from the parser the ``rnnlab`` command itself builds
  (:func:`rnnlab.cli.build_parser`), so it cannot drift from the code.
- **The results from their records.** The summary and ablation tables of ``results.md`` are written
  from ``docs/results.json`` (:mod:`rnnlab.lab.results`) when the page is built, so the site shows the
  records even before ``python -m rnnlab.lab.results --write docs/results.md`` has refreshed the file
  (a test checks that the file agrees too); ``results.json`` itself is on the site beside the page.
- **Maths without JavaScript.** ``$...$`` (inline) and ``$$...$$`` (display) in Markdown, outside
  code, become MathML at build time (latex2mathml), which browsers render natively: no script, no
  network, and nothing left for the reader's browser to typeset.
"""

from __future__ import annotations

import html
import io
import os
import re
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

from mkdocs.structure.files import File

TUTORIALS = "tutorials"
_MATH = re.compile(r"(?<![\\$])\$\$(.+?)\$\$|(?<![\\$\w])\$(?!\s)([^$\n]+?)(?<!\s)\$(?![\w$])", re.S)
_CODE = re.compile(r"(^```.*?^```[ \t]*$|^~~~.*?^~~~[ \t]*$|`[^`\n]+`)", re.S | re.M)
_TOKEN = "RNNLABMATH{}X"


# ----------------------------------------------------------------------------------------- tutorials
def _execute(script: Path) -> tuple[str, dict[str, bytes]]:
    """The tutorial's Markdown (with outputs) and its figures ``{relative path: bytes}``."""
    import jupytext
    from nbconvert import MarkdownExporter

    notebook = jupytext.read(script)
    if os.environ.get("RNNLAB_DOCS_EXECUTE", "1") != "0":
        from nbclient import NotebookClient

        with tempfile.TemporaryDirectory() as work:  # the tutorial's own files land here, not in docs/
            NotebookClient(notebook, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": work}}).execute()
    stem = script.stem
    body, resources = MarkdownExporter().from_notebook_node(
        notebook, resources={"output_files_dir": f"{stem}_files", "unique_key": stem})
    return body, dict(resources.get("outputs", {}))


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


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([^<]+)</code>")


def _role(match) -> str:
    """A Sphinx role left in a docstring (``:class:`~a.b.C```) as a cross-reference: shown as code (``C``
    with ``~``, else the whole name), linked by mkdocs-autorefs to the object's entry in the API reference
    when the name is a full dotted path that the reference documents (``optional``: no warning when not)."""
    short, name = match.group(1), match.group(2)
    shown = f"<code>{name.rsplit('.', 1)[-1] if short else name}</code>"
    if not name.startswith("rnnlab."):
        return shown
    return f'<autoref identifier="{html.escape(name)}" optional>{shown}</autoref>'



def on_page_content(content, page, config, files):
    content = _ROLE.sub(_role, content)  # the docstrings' Sphinx roles read as plain code names
    stash = page.meta.get("_rnnlab_math", [])
    for i, mathml in enumerate(stash):
        content = content.replace(_TOKEN.format(i), mathml)
    if re.search(r"RNNLABMATH\d+X", content):
        raise ValueError(f"{page.file.src_uri}: a formula was not placed ({html.escape(content[:80])}...)")
    return content
