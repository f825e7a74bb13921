"""Reading a protocol file (TOML or YAML) into a validated :class:`Protocol`.

Everything is checked before any data is read: the text (UTF-8, size, nesting depth), the types
(strict: no bool as a number), the ranges, every name the protocol refers to, and the files it
names (inside the protocol's folder). All problems are raised together, one line each naming the
key (:class:`oncorwe.errors.ProtocolError`; exit 2 from the CLI).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from oncorwe.errors import ProtocolError
from oncorwe.protocol._model import Protocol

__all__ = ["MAX_DEPTH", "MAX_PROTOCOL_BYTES", "from_data", "load", "parse", "published_file", "shipped_protocols", "shipped_text"]

_SUFFIXES = (".toml", ".yaml", ".yml")
#: The largest protocol file read (a protocol is a page of text; more is not a protocol).
MAX_PROTOCOL_BYTES = 1_000_000
#: The deepest nesting of tables and lists a protocol may have (the format needs 4).
MAX_DEPTH = 16


def _studies() -> Any:
    return resources.files("oncorwe.protocol") / "studies"


def shipped_protocols() -> tuple[str, ...]:
    """Names of the protocols that ship with oncorwe (``studies/<name>.toml``)."""
    return tuple(
        sorted(
            entry.name.removesuffix(".toml")
            for entry in _studies().iterdir()
            if entry.name.endswith(".toml") and not entry.name.endswith("_published.toml")
        )
    )


def shipped_text(name: str) -> str:
    """The text of a shipped protocol file, comments included."""
    if name not in shipped_protocols():
        raise ProtocolError(
            f"unknown protocol {name!r}: shipped protocols are {', '.join(shipped_protocols())}; "
            "or give the path of a .toml/.yaml file"
        )
    return (_studies() / f"{name}.toml").read_text(encoding="utf-8")


def load(name_or_path: str | Path) -> Protocol:
    """Load and validate a protocol.

    Parameters
    ----------
    name_or_path
        The name of a shipped protocol (``"goldinger2022"``) or the path of a ``.toml``, ``.yaml``
        or ``.yml`` file.

    Raises
    ------
    ProtocolError
        One line per problem, each naming the file, the key and what is allowed.
    """
    text_name = str(name_or_path)
    path = Path(name_or_path)
    if isinstance(name_or_path, Path) or text_name.endswith(_SUFFIXES) or "/" in text_name:
        if not path.is_file():
            raise ProtocolError(f"protocol file not found: {path}")
        if path.suffix.lower() not in _SUFFIXES:
            raise ProtocolError(f"{path}: unsupported protocol format {path.suffix!r} (allowed: .toml, .yaml, .yml)")
        try:
            size = path.stat().st_size
            if size > MAX_PROTOCOL_BYTES:
                raise ProtocolError(f"{path}: {size} bytes; a protocol is at most {MAX_PROTOCOL_BYTES} bytes")
            raw = path.read_bytes()
        except OSError as exc:
            raise ProtocolError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        return parse(_decode(raw, str(path)), fmt=path.suffix.lower().lstrip("."), origin=str(path),
                     folder=path.resolve().parent)
    return parse(shipped_text(text_name), fmt="toml", origin=f"{text_name} (shipped)", folder=None)


def _decode(raw: bytes, origin: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 1 and (raw[0] == 0 or raw[1] == 0)):
        raise ProtocolError(f"{origin}: the file is UTF-16 or UTF-32; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{origin}: not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                            "save it as UTF-8") from None


def parse(text: str, *, fmt: str = "toml", origin: str = "<text>", folder: Path | None = None) -> Protocol:
    """Validate protocol text; ``fmt`` is ``"toml"`` or ``"yaml"``/``"yml"``. ``folder`` is the
    protocol's folder: files it names must be there (None: the shipped studies' folder)."""
    if len(text) > MAX_PROTOCOL_BYTES:
        raise ProtocolError(f"{origin}: {len(text)} characters; a protocol is at most {MAX_PROTOCOL_BYTES}")
    return from_data(_read(text, fmt=fmt, origin=origin), origin=origin, folder=folder)


def from_data(data: Any, *, origin: str = "<data>", folder: Path | None = None) -> Protocol:
    """Validate a protocol given as plain data (the mapping a TOML or YAML file holds, or
    ``Protocol.to_dict()`` with changes); problems as in :func:`parse`."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{origin}: a protocol must be a mapping of keys, got {type(data).__name__}")
    problems = _depth_problems(data, origin)
    if problems:
        raise ProtocolError(problems)
    problems = _path_problems(data, origin, folder)
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        problems.extend(line for err in exc.errors() for line in _problems(origin, err))
        raise ProtocolError(problems) from None
    if problems:
        raise ProtocolError(problems)
    return protocol


def published_file(protocol: Protocol, folder: Path | None) -> Path | None:
    """The published-figures file the protocol names, resolved inside its folder (None: none named)."""
    name = protocol.reference.published
    if not name:
        return None
    base = folder if folder is not None else Path(str(_studies()))
    return (base / name).resolve()


def _read(text: str, *, fmt: str, origin: str) -> dict[str, Any]:
    if fmt == "toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProtocolError(f"{origin}: not valid TOML: {exc}") from None
        except RecursionError:
            raise ProtocolError(f"{origin}: nested too deeply (at most {MAX_DEPTH} levels)") from None
        return data
    if fmt in ("yaml", "yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ProtocolError(f"{origin}: not valid YAML: {exc}".replace("\n", " ")) from None
        except RecursionError:
            raise ProtocolError(f"{origin}: nested too deeply (at most {MAX_DEPTH} levels)") from None
        if not isinstance(data, dict):
            raise ProtocolError(f"{origin}: a protocol must be a mapping of keys, got {type(data).__name__}")
        return data
    raise ProtocolError(f"{origin}: unsupported protocol format {fmt!r} (allowed: toml, yaml, yml)")


def _depth_problems(data: Any, origin: str) -> list[str]:
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, key = stack.pop()
        if depth > MAX_DEPTH:
            return [f"{origin}: {key or '(top level)'}: nested more than {MAX_DEPTH} levels deep"]
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{key}.{k}" if key else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{key}.{i}") for i, v in enumerate(value))
    return []


def _path_problems(data: dict[str, Any], origin: str, folder: Path | None) -> list[str]:
    """Files the protocol names must be plain relative names of files inside its folder."""
    reference = data.get("reference")
    name = reference.get("published") if isinstance(reference, dict) else None
    if not isinstance(name, str) or not name:
        return []
    key = f"{origin}: reference.published"
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts or "\x00" in name:
        return [f"{key}: {name!r} must be a file name inside the protocol's folder (no absolute path, no '..')"]
    base = (folder if folder is not None else Path(str(_studies()))).resolve()
    target = (base / candidate).resolve()
    if not target.is_relative_to(base):
        return [f"{key}: {name!r} leads outside the protocol's folder"]
    if not target.is_file():
        return [f"{key}: file {name!r} not found in the protocol's folder {base}"]
    return []


def _problems(origin: str, err: Any) -> list[str]:
    key = ".".join(str(part) for part in err.get("loc", ())) or "(top level)"
    message = str(err.get("msg", "invalid"))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        message = "unknown key (not part of the protocol; check its spelling)"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "value_error" and "\n" in message:  # the cross-reference check: one line per problem
        return [f"{origin}: {line}" for line in message.removeprefix("Value error, ").splitlines() if line]
    value = err.get("input")
    shown = "" if kind in ("missing", "extra_forbidden") or isinstance(value, dict | list) else f" (got {value!r})"
    return [f"{origin}: {key}: {message}{shown}"]
