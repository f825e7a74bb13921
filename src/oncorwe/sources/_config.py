"""The study folder's ``centres.toml``: which centres sent which files, and how to read them.

The coordinating data manager keeps one entry per centre (id, country, files). Everything about how
a centre writes things is detected from the data; where detection cannot decide (or decides wrong),
the data manager adds an ``overrides`` table to the centre's entry, or points ``mapping`` at a TOML
file holding the same keys. See ``docs/data-sources.md``.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oncorwe.errors import InputError

__all__ = ["CentreConfig", "FileEntry", "Overrides", "StudyConfig", "load_study_config", "order_of_format"]

DateOrder = Literal["DMY", "MDY", "YMD", "SERIAL"]
TimeUnit = Literal["days", "weeks", "months", "years"]


def order_of_format(pattern: str) -> str:
    """The day/month/year order of a strftime pattern such as ``%d.%m.%Y`` (-> ``DMY``)."""
    positions = {part: pattern.find(code) for part, codes in (("D", ("%d",)), ("M", ("%m", "%b", "%B")),
                                                               ("Y", ("%Y",)))
                 for code in codes if code in pattern}
    if set(positions) != {"D", "M", "Y"}:
        raise ValueError(f"date format {pattern!r} needs %d, %m (or %b) and %Y")
    order = "".join(sorted(positions, key=lambda p: positions[p]))
    if order not in ("DMY", "MDY", "YMD"):
        raise ValueError(f"date format {pattern!r}: only day-month-year, month-day-year and year-month-day")
    return order


class Overrides(BaseModel):
    """How to read one centre where detection is not enough (every key optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoding: str | None = None
    delimiter: str | None = None
    decimal: Literal[".", ","] | None = None
    header_row: int | None = Field(default=None, ge=1)
    date_order: DateOrder | None = None
    date_orders: dict[str, DateOrder] = Field(default_factory=dict)
    date_format: str | None = None
    date_formats: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict)
    ignore_columns: list[str] = Field(default_factory=list)
    codes: dict[str, dict[str, str]] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list)
    ldh_unit: str | None = None
    ldh_uln: float | None = Field(default=None, gt=0)
    time_units: dict[str, TimeUnit] = Field(default_factory=dict)
    month_days: float | None = Field(default=None, gt=0)
    index_date: str | None = None

    @field_validator("date_format")
    @classmethod
    def _one_format(cls, value: str | None) -> str | None:
        if value is not None:
            order_of_format(value)
        return value

    @field_validator("date_formats")
    @classmethod
    def _formats(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            order_of_format(pattern)
        return value

    def orders(self) -> tuple[str | None, dict[str, str]]:
        """The centre-wide date order and the per-column orders, from orders or strftime formats."""
        default = self.date_order or (order_of_format(self.date_format) if self.date_format else None)
        per_column = {k: order_of_format(v) for k, v in self.date_formats.items()}
        per_column.update(self.date_orders)
        return default, per_column

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(value, value)
        if len(value) != 1:
            raise ValueError("a delimiter is one character (or tab, comma, semicolon, pipe)")
        return value


#: a centre id: 1-64 characters, none a control character (NUL, newline, tab) or a path separator;
#: it names the centre's folder and is printed in every line about the centre
MAX_CENTRE_ID_CHARS = 64
_NOT_IN_A_CENTRE_ID = re.compile(r"[\x00-\x1f\x7f/\\]")
#: the longest file path an entry may give (the usual PATH_MAX)
MAX_PATH_CHARS = 4096
#: the deepest nesting of tables and arrays in centres.toml or a mapping file (the real ones use 3)
MAX_CONFIG_DEPTH = 16


class FileEntry(BaseModel):
    """One file a centre sent; ``path`` is relative to the centre's folder (or the study folder)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    path: str = Field(min_length=1, max_length=MAX_PATH_CHARS)
    kind: str | None = None

    @field_validator("path")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("a file path cannot hold a NUL character")
        return value


class CentreConfig(BaseModel):
    """One centre's entry."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    country: str | None = None
    files: list[FileEntry] = Field(default_factory=list)
    overrides: Overrides = Field(default_factory=Overrides)
    mapping: str | None = None

    @field_validator("id")
    @classmethod
    def _a_folder_name(cls, value: str) -> str:
        if not 1 <= len(value) <= MAX_CENTRE_ID_CHARS or _NOT_IN_A_CENTRE_ID.search(value):
            raise ValueError(f"a centre id is 1 to {MAX_CENTRE_ID_CHARS} characters, without control "
                             "characters (NUL, newline, tab) or / and \\")
        if value in (".", "..") or value != value.strip():
            raise ValueError("a centre id names its folder: not '.' or '..', no spaces around it")
        return value

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [
                {"kind": k, **v} if isinstance(v, dict) else {"path": v, "kind": k}
                for k, v in value.items()
            ]
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, str) else v for v in value]
        return value


class StudyConfig(BaseModel):
    """All centres of a study folder.

    ``data_cut`` is the study's data cut-off (top-level ``data_cut = 2019-12-31`` in
    ``centres.toml``): no record date can be later; ``None`` when the study does not declare one.
    """

    model_config = ConfigDict(frozen=True)

    root: Path
    centres: list[CentreConfig]
    data_cut: dt.date | None = None


def resolve(root: Path, centre: CentreConfig, path: str) -> Path:
    """A file named in centres.toml: relative to the centre's folder, else to the study folder."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    for base in (root / centre.id, root):
        try:
            if (base / candidate).exists():
                return base / candidate
        except OSError:  # a name the file system refuses (too long): it is not there
            continue
    return root / centre.id / candidate


def _listed_twice(root: Path, centres: list[CentreConfig], path: Path) -> list[str]:
    """One line per file that two entries of ``centres.toml`` name (the same file under two names,
    ``./p.csv`` and ``p.csv``, or under two centres): its records would be counted twice."""
    seen: dict[Path, str] = {}
    problems: list[str] = []
    for centre in centres:
        for index, entry in enumerate(centre.files):
            where = f"centre {centre.id} files[{index}] ({entry.path!r})"
            try:
                key = resolve(root, centre, entry.path).resolve()
            except (OSError, RuntimeError, ValueError):  # unresolvable: reported when it is read
                continue
            if key in seen:
                problems.append(f"{path}: the same file is listed twice, as {seen[key]} and {where}; "
                                "list each file once (its records would be counted twice)")
            else:
                seen[key] = where
    return problems


def _shown(value: object, limit: int = 64) -> str:
    """A value of the file as it may be printed in one line: control characters escaped, cut short."""
    text = repr(value) if not isinstance(value, str) else value
    shown = text[: limit * 4].encode("unicode_escape").decode("ascii")
    return shown[:limit] + ("..." if len(shown) > limit else "")


def _depth(value: object) -> int:
    """How deeply tables and arrays nest in a parsed TOML value (a scalar is 0); iterative, so that
    a hostile file cannot exhaust the stack here either."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _toml(path: Path) -> dict[str, Any]:
    """A TOML file (``centres.toml`` or a mapping file) as a table, or an :class:`InputError`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {_shown(str(exc), 300)}") from exc
    except RecursionError as exc:
        raise InputError(f"{path}: tables or arrays nested deeper than {MAX_CONFIG_DEPTH} levels") from exc
    if _depth(raw) > MAX_CONFIG_DEPTH:
        raise InputError(f"{path}: tables or arrays nested deeper than {MAX_CONFIG_DEPTH} levels")
    return raw


def _problems(exc: ValidationError, where: str) -> list[str]:
    return [
        f"{where}: key {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        for err in exc.errors()
    ]


def load_study_config(data_dir: Path) -> StudyConfig:
    """Read ``centres.toml`` (and each centre's mapping file) from a study folder.

    Raises
    ------
    InputError
        The folder or its ``centres.toml`` is missing, or an entry is invalid (one line per key).
    """
    path = data_dir / "centres.toml"
    if not path.is_file():
        raise InputError(f"{data_dir}: no centres.toml (it lists each centre's id, country and files)")
    raw = _toml(path)
    entries = raw.get("centres", raw.get("centre"))
    if isinstance(entries, dict):
        entries = [{"id": key, **value} if isinstance(value, dict) else value for key, value in entries.items()]
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: expected [centres.<ID>] tables or [[centres]] entries")
    centres: list[CentreConfig] = []
    problems: list[str] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            problems.append(f"{path}: centre entry {number}: expected a table (id, country, files), "
                            f"got {type(entry).__name__}")
            continue
        entry = dict(entry)
        entry.setdefault("id", entry.get("centre_id"))
        mapping = entry.get("mapping")
        if isinstance(mapping, str):
            try:
                extra = _toml(data_dir / mapping)
            except InputError as exc:
                problems.append(f"{path}: centre {_shown(entry.get('id'))}: mapping file {mapping[:200]}: {exc}")
                continue
            overrides, declared = extra.get("overrides", extra), entry.get("overrides", {})
            if isinstance(overrides, dict) and isinstance(declared, dict):
                entry["overrides"] = {**overrides, **declared}
            else:
                problems.append(f"{path}: centre {_shown(entry.get('id'))}: overrides: expected a table")
                continue
        try:
            centres.append(CentreConfig.model_validate(entry))
        except ValidationError as exc:
            problems.extend(_problems(exc, f"{path}: centre {_shown(entry.get('id'))}"))
    ids = [c.id for c in centres]
    problems.extend(f"{path}: centre id {i!r} appears twice" for i in sorted({i for i in ids if ids.count(i) > 1}))
    problems.extend(_listed_twice(data_dir, centres, path))
    data_cut = _data_cut(raw.get("data_cut"), path, problems)
    if problems:
        raise InputError("\n".join(problems))
    return StudyConfig(root=data_dir, centres=centres, data_cut=data_cut)


def _data_cut(value: object, path: Path, problems: list[str]) -> dt.date | None:
    """The top-level ``data_cut``: a TOML date (``2019-12-31``) or an ISO date string."""
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(f"{path}: key data_cut: expected a date such as 2019-12-31, got {str(value)[:40]!r}")
    return None
