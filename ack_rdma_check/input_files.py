"""Reading outside input within bounds: regular files only, a size cap, strict UTF-8, and JSON or YAML of a
bounded depth and (for YAML aliases) a bounded expanded size. Every refusal is a UsageError of one short
paragraph that names the input, the problem and the fix, and never echoes more than a few dozen characters
of the input, however large it is."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from typing import Any

import yaml

from ack_rdma_check.errors import UsageError

MAX_BYTES = 4 * 1024 * 1024
"""A kubeconfig or the stack outputs with embedded certificates are a few KiB; 4 MiB leaves room for many."""
MAX_DEPTH = 64
"""Kubeconfigs, outputs and pod manifests nest fewer than 15 levels."""
MAX_YAML_NODES = 100_000
"""Nodes of a YAML document with its aliases expanded: the billion-laughs document refused early."""
_ECHO = 60
_PATH = 200
_MESSAGE = 240


def shorten(text: str, limit: int = _ECHO) -> str:
    """``text`` up to ``limit`` characters, else its head and how long it really is."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…({len(text)} characters)"


def echo_path(path: str) -> str:
    """A path as an error message names it: in full up to the length of any sensible one."""
    return shorten(path, _PATH)


def echo(value: object) -> str:
    """A value of the input as an error message quotes it: its repr, shortened."""
    return shorten(repr(value))


def one_line(message: str) -> str:
    """A library's error message (parsers quote the input, over several lines) as a short single line."""
    return shorten(" ".join(message.split()).rstrip("."), _MESSAGE)


def read_text(path: str, what: str, fix: str) -> str:
    """The UTF-8 text of the regular file ``path``; ``what`` names the input (``--outputs x.json``)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise UsageError(f"{what} cannot be read ({error.strerror or error}). {fix}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UsageError(f"{what} is {_kind(mode)}, not a regular file. {fix}")
        data = _read_up_to(fd, MAX_BYTES + 1)
    except OSError as error:
        raise UsageError(f"{what} cannot be read ({error.strerror or error}). {fix}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise UsageError(f"{what} is larger than {MAX_BYTES // 2**20} MiB, too large to be one. {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{what} is not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}). {fix}"
        ) from None


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := os.read(fd, min(1 << 16, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def load_json(text: str, what: str, fix: str) -> Any:
    """JSON nested at most MAX_DEPTH levels (deeper input would exhaust the parser's recursion)."""
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise UsageError(f"{what} nests deeper than {MAX_DEPTH} levels. {fix}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{what} is not JSON ({error.msg} at line {error.lineno}). {fix}") from None
    except ValueError:  # the only other refusal of json.loads: an integer past Python's digit limit
        raise UsageError(
            f"{what} holds a number of more than {sys.get_int_max_str_digits()} digits. {fix}"
        ) from None


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_DEPTH before it recurses."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nests deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml_documents(text: str, what: str, fix: str) -> list[Any]:
    """Every document of a YAML stream, each bounded in depth and in its size with aliases expanded."""
    documents: list[Any] = []
    try:
        loader = _BoundedLoader(text)  # refuses control characters here already
    except yaml.YAMLError as error:
        raise UsageError(f"{what} is not usable YAML ({one_line(str(error))}). {fix}") from None
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
                raise yaml.YAMLError(f"expands to more than {MAX_YAML_NODES} nodes through its aliases")
            documents.append(loader.construct_document(node))
    except yaml.YAMLError as error:
        raise UsageError(f"{what} is not usable YAML ({one_line(str(error))}). {fix}") from None
    finally:
        loader.dispose()
    return documents


def load_yaml(text: str, what: str, fix: str) -> Any:
    """The one document of a YAML text (None when empty)."""
    documents = load_yaml_documents(text, what, fix)
    if len(documents) > 1:
        raise UsageError(f"{what} holds {len(documents)} YAML documents where one is expected. {fix}")
    return documents[0] if documents else None


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes under ``node`` counting each alias as a copy; shared nodes are sized once (memo by id)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_YAML_NODES + 1  # until sized: an alias back into the node itself never ends
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, sizes) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size
    return size
