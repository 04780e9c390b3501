"""The README and docs/ read as Markdown (markdown-it-py, CommonMark with GitHub's tables):
their headings and anchors, links, code spans, code blocks and tables."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[2]
# The documents a reader moves between: the front door, the manual, the benchmark figures.
DOCUMENTS = (
    [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")) + [ROOT / "bench/results/README.md"]
)


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, every character that is not a letter, a
    digit, `_`, `-` or a space dropped, spaces turned into `-` (github-slugger's rule)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _text(inline: Token) -> str:
    """The text a heading shows: its words and code spans, without Markdown's marks."""
    return "".join(
        child.content for child in inline.children or () if child.type in ("text", "code_inline")
    )


@dataclass
class Document:
    path: Path
    tokens: list[Token]
    headings: list[tuple[int, str]] = field(default_factory=list)  # (level, text)

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))

    def anchors(self) -> set[str]:
        """Every heading's anchor, the second of two equal ones with `-1`, as GitHub does."""
        seen: Counter[str] = Counter()
        anchors = set()
        for _, text in self.headings:
            slug = github_slug(text)
            anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
        return anchors

    def _inlines(self) -> list[Token]:
        return [token for token in self.tokens if token.type == "inline"]

    def links(self) -> list[str]:
        """The target of every link and image."""
        targets = []
        for inline in self._inlines():
            for child in inline.children or ():
                if child.type == "link_open":
                    targets.append(str(child.attrs["href"]))
                elif child.type == "image":
                    targets.append(str(child.attrs["src"]))
        return targets

    def code_spans(self) -> list[str]:
        return [
            child.content
            for inline in self._inlines()
            for child in inline.children or ()
            if child.type == "code_inline"
        ]

    def code_blocks(self) -> list[str]:
        return [token.content for token in self.tokens if token.type in ("fence", "code_block")]

    def section(self, heading: str) -> Document:
        """The part of the document under `heading`, up to the next heading of its level."""
        start = level = None
        for index, token in enumerate(self.tokens):
            if token.type != "heading_open":
                continue
            this_level = int(token.tag[1])
            if start is None and _text(self.tokens[index + 1]) == heading:
                start, level = index, this_level
            elif start is not None and level is not None and this_level <= level:
                return Document(self.path, self.tokens[start:index])
        if start is None:
            raise LookupError(f"{self.name} has no heading {heading!r}")
        return Document(self.path, self.tokens[start:])

    def tables(self) -> list[list[list[Token]]]:
        """Each table's body rows, each row its cells' inline tokens (header row left out)."""
        tables: list[list[list[Token]]] = []
        in_body = False
        for token in self.tokens:
            if token.type == "table_open":
                tables.append([])
            elif token.type == "tbody_open":
                in_body = True
            elif token.type == "tbody_close":
                in_body = False
            elif in_body and token.type == "tr_open":
                tables[-1].append([])
            elif in_body and token.type == "inline":
                tables[-1][-1].append(token)
        return tables


def cell_code_spans(cell: Token) -> list[str]:
    return [child.content for child in cell.children or () if child.type == "code_inline"]


@cache
def read(path: Path) -> Document:
    tokens = _parser().parse(path.read_text())
    document = Document(path, tokens)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            document.headings.append((int(token.tag[1]), _text(tokens[index + 1])))
    return document
