"""Pulumi.yaml and stack files read as the Pulumi CLI reads them, within bounds.

The CLI decodes them with go-yaml v3 (pulumi/pulumi ``sdk/go/common/encoding/marshal.go`` line 27, commit
1b59498), which differs from PyYAML's YAML 1.1 where it matters for config (go-yaml/yaml branch v3, commit
f6f7691):
- only ``true``/``True``/``TRUE`` and ``false``/``False``/``FALSE`` are booleans (``resolve.go`` lines 50-51):
  ``yes``, ``on``, ``no`` stay strings, and a boolean key given ``yes`` fails the CLI's type check;
- a date stays a string when decoded into an untyped value;
- a mapping key given twice is an error: ``mapping key "x" already defined at line N`` (``decode.go``
  line 776);
- alias expansion is bounded: past 1,000 decodes and 100 alias decodes, a document whose decodes come from
  aliases above a ratio (99% up to 400,000 decodes) fails with "document contains excessive aliasing"
  (``decode.go`` lines 455-491).
Beyond the CLI, reading is bounded here so that a hostile file cannot exhaust memory or time: regular files
only, at most MAX_BYTES, strict UTF-8 (``ack_rdma_check.input_files.read_text``), at most MAX_VALUES values
with aliases expanded, nesting at most MAX_DEPTH levels.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ack_rdma_check.errors import UsageError
from ack_rdma_check.input_files import one_line, read_text

MAX_VALUES = 100_000
"""Values of one file with aliases expanded; a stack file holds a few hundred."""
MAX_DEPTH = 32
"""Nesting of one file; stack config nests fewer than ten levels."""
# go-yaml v3 alias ratio (decode.go lines 455-481).
_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000
_GO_YAML_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class YamlFileError(Exception):
    """A file that cannot be read as YAML within bounds; the message is one short paragraph."""


class _GoYamlResolver(yaml.resolver.Resolver):
    """YAML 1.1's implicit types as go-yaml v3 resolves them: its booleans only, no timestamps."""


_GoYamlResolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_GoYamlResolver.add_implicit_resolver(_BOOL_TAG, _GO_YAML_BOOL, list("tTfF"))


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _GoYamlResolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _GoYamlResolver.__init__(self)


def _allowed_alias_ratio(decodes: int) -> float:
    if decodes <= _ALIAS_RATIO_LOW:
        return 0.99
    if decodes >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decodes - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


class _Decoder:
    """Values from composed nodes, counting decodes as go-yaml does (an alias is its node decoded again)."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.decodes = 0
        self.alias_decodes = 0
        self.decoded: set[int] = set()

    def value(self, node: yaml.Node, depth: int = 0, in_alias: bool = False) -> Any:
        # The composer hands an alias over as the very node it names: a node met again is an alias.
        in_alias = in_alias or id(node) in self.decoded
        self.decoded.add(id(node))
        self.decodes += 1
        self.alias_decodes += in_alias
        if self.decodes > MAX_VALUES:
            raise YamlFileError(f"holds more than {MAX_VALUES} values (aliases expanded)")
        if (
            self.alias_decodes > 100
            and self.decodes > 1000
            and self.alias_decodes / self.decodes > _allowed_alias_ratio(self.decodes)
        ):
            # go-yaml's own words (decode.go line 490).
            raise YamlFileError("document contains excessive aliasing")
        if depth > MAX_DEPTH:
            raise YamlFileError(f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, depth + 1, in_alias) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, depth, in_alias)
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        line = node.start_mark.line + 1
        try:
            value = self.loader.construct_object(node)
        except ValueError:  # an integer past Python's digit limit for conversions (4,300)
            raise YamlFileError(
                f"line {line}: a number of {len(str(node.value))} digits, too long for any config value"
            ) from None
        if value is not None and not isinstance(value, str | int | float | bool):
            raise YamlFileError(f"line {line}: a {node.tag.rsplit(':', 1)[-1]} value cannot be config")
        return value

    def mapping(self, node: yaml.MappingNode, depth: int, in_alias: bool) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # merge keys (<<), which go-yaml supports too
        result: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node, depth + 1, in_alias)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise YamlFileError(f"line {key_node.start_mark.line + 1}: a mapping key must be a scalar")
            if key in lines:
                # go-yaml's own words (decode.go line 776).
                line = key_node.start_mark.line + 1
                raise YamlFileError(
                    f'line {line}: mapping key "{one_line(str(key))}" already defined at line {lines[key]}'
                )
            lines[key] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, depth + 1, in_alias)
        return result


def load_yaml_file(path: str, fix: str) -> Any:
    """The one YAML document of the regular file ``path`` (None when empty), read like the Pulumi CLI does."""
    try:
        text = read_text(path, path, fix)
    except UsageError as error:
        raise YamlFileError(str(error)) from None
    text = text.removeprefix("\ufeff")  # the CLI strips a UTF-8 BOM too (loaders.go readFileStripUTF8BOM)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as error:
        raise YamlFileError(f"{path}: is not valid YAML ({one_line(str(error))}). {fix}") from None
    try:
        node = loader.get_single_node()
        return None if node is None else _Decoder(loader).value(node)
    except yaml.YAMLError as error:
        raise YamlFileError(f"{path}: is not valid YAML ({one_line(str(error))}). {fix}") from None
    except YamlFileError as error:
        raise YamlFileError(f"{path}: {error}. {fix}") from None
    except RecursionError:
        raise YamlFileError(f"{path}: nests deeper than {MAX_DEPTH} levels. {fix}") from None
    finally:
        loader.dispose()
