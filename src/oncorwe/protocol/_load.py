"""Reading a protocol file (TOML or YAML) into a validated :class:`Protocol`."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from oncorwe.errors import ProtocolError
from oncorwe.protocol._model import Protocol

__all__ = ["load", "parse", "shipped_protocols", "shipped_text"]

_SUFFIXES = (".toml", ".yaml", ".yml")


def shipped_protocols() -> tuple[str, ...]:
    """Names of the protocols that ship with oncorwe (``studies/<name>.toml``)."""
    folder = resources.files("oncorwe.protocol") / "studies"
    return tuple(
        sorted(
            entry.name.removesuffix(".toml")
            for entry in folder.iterdir()
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
    return (resources.files("oncorwe.protocol") / "studies" / f"{name}.toml").read_text(encoding="utf-8")


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
        One line per problem, each naming the key and what is allowed.
    """
    text_name = str(name_or_path)
    path = Path(name_or_path)
    if isinstance(name_or_path, Path) or text_name.endswith(_SUFFIXES) or "/" in text_name:
        if not path.is_file():
            raise ProtocolError(f"protocol file not found: {path}")
        return parse(path.read_text(encoding="utf-8"), fmt=path.suffix.lstrip("."), origin=str(path))
    return parse(shipped_text(text_name), fmt="toml", origin=f"{text_name} (shipped)")


def parse(text: str, *, fmt: str = "toml", origin: str = "<text>") -> Protocol:
    """Validate protocol text; ``fmt`` is ``"toml"`` or ``"yaml"``/``"yml"``."""
    data = _read(text, fmt=fmt, origin=origin)
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError([_problem(origin, err) for err in exc.errors()]) from None


def _read(text: str, *, fmt: str, origin: str) -> dict[str, Any]:
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProtocolError(f"{origin}: not valid TOML: {exc}") from None
    if fmt in ("yaml", "yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ProtocolError(f"{origin}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ProtocolError(f"{origin}: a protocol must be a mapping of keys, got {type(data).__name__}")
        return data
    raise ProtocolError(f"{origin}: unsupported protocol format {fmt!r} (allowed: toml, yaml, yml)")


def _problem(origin: str, err: Any) -> str:
    key = ".".join(str(part) for part in err.get("loc", ())) or "(top level)"
    message = str(err.get("msg", "invalid"))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        message = "unknown key (not part of the protocol; check its spelling)"
    elif kind == "missing":
        message = "required key is missing"
    value = err.get("input")
    shown = "" if kind in ("missing", "extra_forbidden") or isinstance(value, dict) else f" (got {value!r})"
    return f"{origin}: {key}: {message}{shown}"
