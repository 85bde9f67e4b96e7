"""A griffe extension of rnnlab's API reference (``mkdocs.yml`` loads it): constants documented by a comment.

rnnlab documents a module's constants the Sphinx way, with a ``#:`` comment on the lines just above the
assignment or at the end of its line; griffe reads only docstrings. This gives each module-level
attribute, and each class attribute (an enum's members), without a docstring the text of its ``#:``
comment, so the API reference lists it.
"""

from __future__ import annotations

import griffe


class CommentDocstrings(griffe.Extension):
    def on_attribute_instance(self, *, node, attr: griffe.Attribute, agent, **kwargs) -> None:
        if attr.docstring is not None or attr.lineno is None or not (attr.parent.is_module or attr.parent.is_class):
            return
        source = attr.lines_collection[attr.filepath]
        lines, i = [], attr.lineno - 2
        while i >= 0 and source[i].lstrip().startswith("#:"):
            lines.insert(0, source[i].lstrip()[2:].strip())
            i -= 1
        if not lines and "  #: " in source[attr.lineno - 1]:
            lines = [source[attr.lineno - 1].split("  #: ", 1)[1].strip()]
        if lines:
            attr.docstring = griffe.Docstring("\n".join(lines), lineno=attr.lineno, parent=attr)
