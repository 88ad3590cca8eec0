"""TAMS timestamps and timeranges as plain integers, fast enough for the ingest hot path.

Measured parse speed (CPython 3.11.7, this venv, a one-off timeit script over 10 000
segment-style strings such as ``[1694429247:40000000_1694429248:40000000)``, best of 7):
    TimeRange.parse (this module)                     ~1.6 us per string
    mediatimestamp.immutable.TimeRange.from_str       ~6.3 us per string
That ~4x gap is why we parse here, with one compiled regex and int arithmetic, instead of
wrapping mediatimestamp. mediatimestamp is kept as a test-only reference (see
tests/test_timing.py). It also accepts strings the spec's regex rejects, such as ``01:0``
and ``[1:0_2:0_3:0)``.

Model
-----
A timestamp is an ``int`` count of nanoseconds (TAMS ``[-]sec:nsec``; the sign applies
to the whole value and seconds are unbounded). A timerange is a set of nanosecond
instants: ``None`` on a side means unbounded, and ``include_*`` says whether a bounded
side's own instant is in the set.

Because timestamps have nanosecond resolution, the timeline is discrete: ``(0:0_0:1)``
holds no representable instant, so it is empty here (mediatimestamp calls it
non-empty), and ``(0:0_0:2)`` holds exactly one instant, so it is the instantaneous
``[0:1]``. This keeps every answer (emptiness, overlap, coverage) identical to the
answer given by the int64 half-open ``[start, end)`` index form that stores use.
Only ranges whose two bounds are 1 or 2 ns apart read differently from the spec's
wording (and from mediatimestamp); every other range reads exactly as the spec says.

Every ``TimeRange`` instance is normalised when it is built (however it is built):
unbounded sides never carry a marker, every empty range is the single value
``TimeRange.never()``, and a range holding exactly one instant is ``[a]``. Other
ranges keep the markers they were written with, so ``[0:0_10:0)`` and ``[0:0_9:999999999]``
hold the same instants but compare unequal (``covers`` both ways tests set equality).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = [
    "NS_PER_SEC",
    "INT64_MIN",
    "INT64_MAX",
    "InvalidTimestamp",
    "InvalidTimeRange",
    "EmptyTimeRange",
    "parse_timestamp",
    "format_timestamp",
    "Timestamp",
    "TimeRange",
]

NS_PER_SEC = 1_000_000_000
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# The spec's patterns, published verbatim in our JSON schemas. Python matching uses
# fullmatch on the compiled forms below, because Python's "$" also matches before a
# trailing newline and the spec's (ECMA) "$" does not.
_TS = r"-?(0|[1-9][0-9]*):(0|[1-9][0-9]{0,8})"
_TIMESTAMP_PATTERN = "^" + _TS + "$"
_TIMERANGE_PATTERN = r"^(\[|\()?(" + _TS + r")?(_(" + _TS + r")?)?(\]|\))?$"

# Possessive quantifiers (``*+``, ``?+``) stop the engine retrying shorter digit runs,
# which can never succeed here (a digit is never a valid next character); that halves
# the match time without changing the accepted language (tests compare with the spec's).
_TS_RE = re.compile(r"(-?)(0|[1-9][0-9]*+):(0|[1-9][0-9]{0,8}+)")
_TR_RE = re.compile(
    r"([\[(]?)"
    r"(?:(-?)(0|[1-9][0-9]*+):(0|[1-9][0-9]{0,8}+))?+"
    r"(?:(_)(?:(-?)(0|[1-9][0-9]*+):(0|[1-9][0-9]{0,8}+))?+)?+"
    r"([\])]?)"
)


class InvalidTimestamp(ValueError):
    """The text is not a TAMS timestamp; a ValueError so pydantic reports it as a validation error."""


class InvalidTimeRange(ValueError):
    """The text is not a TAMS timerange; a ValueError so pydantic reports it as a validation error."""


class EmptyTimeRange(ValueError):
    """The operation needs at least one instant (e.g. an index key) but the range is empty."""


def parse_timestamp(text: str) -> int:
    """Parse a TAMS ``[-]sec:nsec`` string into nanoseconds, rejecting anything off the spec regex."""
    try:
        m = _TS_RE.fullmatch(text)
    except TypeError:
        raise InvalidTimestamp(f"timestamp must be a string, not {type(text).__name__}") from None
    if m is None:
        raise InvalidTimestamp(f"{text!r} is not a TAMS timestamp ([-]sec:nsec)")
    try:
        ns = int(m[2]) * NS_PER_SEC + int(m[3])
    except ValueError:  # more digits than Python's int-from-str limit allows
        raise InvalidTimestamp(f"{text[:40]!r}... has too many digits") from None
    return -ns if m[1] else ns


def format_timestamp(ns: int) -> str:
    """Format nanoseconds canonically: no leading zeros, ``-`` only for negatives, never ``-0:0``."""
    if ns < 0:
        sec, nsec = divmod(-ns, NS_PER_SEC)
        return f"-{sec}:{nsec}"
    sec, nsec = divmod(ns, NS_PER_SEC)
    return f"{sec}:{nsec}"


# --------------------------------------------------------------------------- pydantic: Timestamp


def _timestamp_from_python(value: Any) -> int:
    # bool is an int subclass but True is never meant as 1 ns.
    if type(value) is int:
        return value
    if isinstance(value, str):
        return parse_timestamp(value)
    raise InvalidTimestamp(f"expected a TAMS timestamp string or int nanoseconds, got {type(value).__name__}")


class _TimestampAnnotation:
    """Pydantic hooks for ``Timestamp``: strings on the wire, int nanoseconds in Python."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.json_or_python_schema(
            # On the JSON wire only the spec's string form is accepted (a bare number
            # would silently be read as nanoseconds).
            json_schema=core_schema.no_info_after_validator_function(parse_timestamp, core_schema.str_schema()),
            python_schema=core_schema.no_info_plain_validator_function(_timestamp_from_python),
            serialization=core_schema.plain_serializer_function_ser_schema(format_timestamp, when_used="always"),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": _TIMESTAMP_PATTERN}


Timestamp = Annotated[int, _TimestampAnnotation]
"""Int nanoseconds in Python; the canonical TAMS string when validated from or dumped to JSON.

Python-mode validation (``Model(...)``, ``model_validate``) also takes an int as
nanoseconds, for internal code. FastAPI validates request bodies in Python mode, so
there a JSON number is read as nanoseconds too; only ``model_validate_json`` insists
on the string form.
"""


# --------------------------------------------------------------------------- TimeRange


@dataclass(frozen=True, slots=True, repr=False)
class TimeRange:
    """A set of nanosecond instants between two optional bounds; see the module docstring.

    ``start``/``end`` are nanoseconds or ``None`` (unbounded). ``__post_init__``
    normalises every instance, so equality and hashing are safe whichever way it was built.
    """

    start: int | None
    end: int | None
    include_start: bool
    include_end: bool

    def __post_init__(self) -> None:
        start, end = self.start, self.end
        inc_s = bool(self.include_start) and start is not None
        inc_e = bool(self.include_end) and end is not None
        if start is not None and end is not None:
            first = start if inc_s else start + 1
            last = end if inc_e else end - 1
            if first > last:
                start, end, inc_s, inc_e = 0, 0, False, False
            elif first == last:
                start, end, inc_s, inc_e = first, first, True, True
        if (
            start is not self.start
            or end is not self.end
            or inc_s is not self.include_start
            or inc_e is not self.include_end
        ):
            object.__setattr__(self, "start", start)
            object.__setattr__(self, "end", end)
            object.__setattr__(self, "include_start", inc_s)
            object.__setattr__(self, "include_end", inc_e)

    # ----------------------------------------------------------------- construction

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """Parse a TAMS timerange string (any spelling the spec's regex allows)."""
        try:
            m = _TR_RE.fullmatch(text)
        except TypeError:
            raise InvalidTimeRange(f"timerange must be a string, not {type(text).__name__}") from None
        if m is None:
            raise InvalidTimeRange(f"{text!r} is not a TAMS timerange")
        opener, s_neg, s_sec, s_ns, under, e_neg, e_sec, e_ns, closer = m.groups()
        try:
            start = None
            if s_sec is not None:
                start = int(s_sec) * NS_PER_SEC + int(s_ns)
                if s_neg:
                    start = -start
            end = None
            if e_sec is not None:
                end = int(e_sec) * NS_PER_SEC + int(e_ns)
                if e_neg:
                    end = -end
        except ValueError:  # more digits than Python's int-from-str limit allows
            raise InvalidTimeRange(f"{text[:40]!r}... has a timestamp with too many digits") from None
        if under is None:
            if start is None:
                return _NEVER  # "", "()", "[]", ...
            end = start  # a bare timestamp is the range [a_a], markers as written
        # A bounded side with no marker is inclusive; _make drops the markers of unbounded
        # sides and turns "_" into eternity.
        return _make(start, end, opener != "(", closer != ")")

    @classmethod
    def never(cls) -> TimeRange:
        """The empty range, ``()``; the one value every empty range normalises to."""
        return _NEVER

    @classmethod
    def eternity(cls) -> TimeRange:
        """The whole timeline, ``_``."""
        return _ETERNITY

    @classmethod
    def instant(cls, ns: int) -> TimeRange:
        """The range holding the single instant ``ns``, ``[a]``."""
        return _make(ns, ns, True, True)

    @classmethod
    def from_half_open(cls, start_ns: int, end_ns: int) -> TimeRange:
        """Rebuild ``[start_ns_end_ns)`` from an index row; the int64 sentinels mean unbounded."""
        return _make(
            None if start_ns == INT64_MIN else start_ns,
            None if end_ns == INT64_MAX else end_ns,
            True,
            False,
        )

    # ----------------------------------------------------------------- predicates

    @property
    def is_empty(self) -> bool:
        """True for ``()``, the range with no instants."""
        return self is _NEVER or (
            self.start == 0 and self.end == 0 and not self.include_start and not self.include_end
        )

    @property
    def is_eternity(self) -> bool:
        """True for ``_``, the range unbounded on both sides."""
        return self.start is None and self.end is None

    @property
    def is_instantaneous(self) -> bool:
        """True when the range holds exactly one instant (always written ``[a]``)."""
        return self.start is not None and self.start == self.end and self.include_start

    @property
    def is_bounded(self) -> bool:
        """True when both sides are bounded (the empty range counts as bounded)."""
        return self.start is not None and self.end is not None

    @property
    def fits_int64(self) -> bool:
        """True when ``half_open()`` succeeds exactly: no clamping and no bound equal to a sentinel.

        Stores use INT64_MIN/INT64_MAX to mean "unbounded", so a bounded side that lands
        on (or beyond) a sentinel would be read back as unbounded; such ranges (and the
        empty range, which has no index form) should be rejected before storing.
        """
        if self.is_empty:
            return False
        start, end = self.start, self.end
        if start is not None:
            lo = start if self.include_start else start + 1
            if not INT64_MIN < lo < INT64_MAX:
                return False
        if end is not None:
            hi = end + 1 if self.include_end else end
            if not INT64_MIN < hi < INT64_MAX:
                return False
        return True

    def contains_ns(self, t: int) -> bool:
        """True when the instant ``t`` (nanoseconds) is in the range."""
        start, end = self.start, self.end
        if start is not None and (t < start or (t == start and not self.include_start)):
            return False
        if end is not None and (t > end or (t == end and not self.include_end)):
            return False
        return not self.is_empty

    # ----------------------------------------------------------------- set operations
    # On the discrete timeline each bounded side has an effective first/last instant:
    # first = start (+1 if exclusive), last = end (-1 if exclusive). Comparing those
    # makes the answers independent of which marker spelling a range uses.

    def overlaps(self, other: TimeRange) -> bool:
        """True when the two ranges share at least one instant (the empty range overlaps nothing)."""
        if self.is_empty or other.is_empty:
            return False
        a_first = _first(self)
        b_last = _last(other)
        if a_first is not None and b_last is not None and a_first > b_last:
            return False
        b_first = _first(other)
        a_last = _last(self)
        return b_first is None or a_last is None or b_first <= a_last

    def covers(self, other: TimeRange) -> bool:
        """True when every instant of ``other`` is in ``self`` (so everything covers the empty range)."""
        if other.is_empty:
            return True
        if self.is_empty:
            return False
        s_first = _first(self)
        if s_first is not None:
            o_first = _first(other)
            if o_first is None or o_first < s_first:
                return False
        s_last = _last(self)
        if s_last is not None:
            o_last = _last(other)
            if o_last is None or o_last > s_last:
                return False
        return True

    def intersect(self, other: TimeRange) -> TimeRange:
        """The instants in both ranges. On ties, prefers ``[`` starts and ``)`` ends (segment style)."""
        if self.is_empty or other.is_empty:
            return _NEVER
        s_side = _pick_start(self, other, later=True)
        e_side = _pick_end(self, other, later=False)
        return _make(s_side.start, e_side.end, s_side.include_start, e_side.include_end)

    def hull(self, other: TimeRange) -> TimeRange:
        """The smallest range holding both (gaps between them included); hull with empty is the other."""
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        s_side = _pick_start(self, other, later=False)
        e_side = _pick_end(self, other, later=True)
        return _make(s_side.start, e_side.end, s_side.include_start, e_side.include_end)

    def shift(self, offset_ns: int) -> TimeRange:
        """The same range moved by ``offset_ns`` (e.g. applying a segment's ``ts_offset``)."""
        if self.is_empty or offset_ns == 0:
            return self
        start, end = self.start, self.end
        return _make(
            None if start is None else start + offset_ns,
            None if end is None else end + offset_ns,
            self.include_start,
            self.include_end,
        )

    def half_open(self) -> tuple[int, int]:
        """The int64 ``[start_ns, end_ns)`` form stores index by; sentinels stand for unbounded.

        Bounded values are clamped into int64; check ``fits_int64`` first if clamping
        would be wrong for the caller. Raises EmptyTimeRange for ``()``, which has no such form.
        """
        if self.is_empty:
            raise EmptyTimeRange("the empty timerange () has no half-open index form")
        start, end = self.start, self.end
        if start is None:
            lo = INT64_MIN
        else:
            lo = start if self.include_start else start + 1
            lo = INT64_MIN if lo < INT64_MIN else INT64_MAX if lo > INT64_MAX else lo
        if end is None:
            hi = INT64_MAX
        else:
            hi = end + 1 if self.include_end else end
            hi = INT64_MIN if hi < INT64_MIN else INT64_MAX if hi > INT64_MAX else hi
        return lo, hi

    # ----------------------------------------------------------------- text

    def __str__(self) -> str:
        """The canonical spelling: ``()``, ``_``, ``[a]``, or markers only on bounded sides."""
        start, end = self.start, self.end
        if start is not None and start == end:
            return "()" if not self.include_start else f"[{format_timestamp(start)}]"
        left = "" if start is None else ("[" if self.include_start else "(") + format_timestamp(start)
        right = "" if end is None else format_timestamp(end) + ("]" if self.include_end else ")")
        return f"{left}_{right}"

    def __repr__(self) -> str:
        return f"TimeRange.parse({str(self)!r})"

    # ----------------------------------------------------------------- pydantic

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Let ``TimeRange`` be a model field: parsed from the string, dumped as the canonical string."""
        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_after_validator_function(cls.parse, core_schema.str_schema()),
            python_schema=core_schema.no_info_plain_validator_function(_timerange_from_python),
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="always"),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Publish the spec's string pattern, not pydantic's view of a dataclass."""
        return {"type": "string", "pattern": _TIMERANGE_PATTERN}


def _first(r: TimeRange) -> int | None:
    """First instant in a non-empty range, or None when unbounded below."""
    s = r.start
    return s if s is None or r.include_start else s + 1


def _last(r: TimeRange) -> int | None:
    """Last instant in a non-empty range, or None when unbounded above."""
    e = r.end
    return e if e is None or r.include_end else e - 1


def _pick_start(a: TimeRange, b: TimeRange, later: bool) -> TimeRange:
    """Whichever of two non-empty ranges starts later (or earlier); on a tie the ``[`` spelling wins."""
    fa, fb = _first(a), _first(b)
    if fa is None or fb is None:
        if later:
            return b if fa is None else a
        return a if fa is None else b
    if fa != fb:
        return a if (fa > fb) == later else b
    return b if b.include_start and not a.include_start else a


def _pick_end(a: TimeRange, b: TimeRange, later: bool) -> TimeRange:
    """Whichever of two non-empty ranges ends later (or earlier); on a tie the ``)`` spelling wins."""
    la, lb = _last(a), _last(b)
    if la is None or lb is None:
        if later:
            return a if la is None else b
        return b if la is None else a
    if la != lb:
        return a if (la > lb) == later else b
    return b if a.include_end and not b.include_end else a


def _timerange_from_python(value: Any) -> TimeRange:
    if isinstance(value, TimeRange):
        return value
    if isinstance(value, str):
        return TimeRange.parse(value)
    raise InvalidTimeRange(f"expected a TAMS timerange string or TimeRange, got {type(value).__name__}")


_NEVER = TimeRange(0, 0, False, False)
_ETERNITY = TimeRange(None, None, False, False)

_new = object.__new__
# Slot descriptors write a frozen instance's fields directly (what the dataclass
# __init__ does, minus its per-field object.__setattr__ calls and __post_init__).
_set_start = TimeRange.start.__set__  # type: ignore[attr-defined]
_set_end = TimeRange.end.__set__  # type: ignore[attr-defined]
_set_include_start = TimeRange.include_start.__set__  # type: ignore[attr-defined]
_set_include_end = TimeRange.include_end.__set__  # type: ignore[attr-defined]


def _make(start: int | None, end: int | None, inc_s: bool, inc_e: bool) -> TimeRange:
    """Internal constructor for the hot path: the same value as ``TimeRange(...)``, built ~3x faster.

    Applies the normalisation rules of ``TimeRange.__post_init__``; ``inc_s``/``inc_e``
    must already be bools.
    """
    if start is None:
        if end is None:
            return _ETERNITY
        inc_s = False
    elif end is None:
        inc_e = False
    else:
        first = start if inc_s else start + 1
        last = end if inc_e else end - 1
        if first > last:
            return _NEVER
        if first == last:
            start = end = first
            inc_s = inc_e = True
    r = _new(TimeRange)
    _set_start(r, start)
    _set_end(r, end)
    _set_include_start(r, inc_s)
    _set_include_end(r, inc_e)
    return r
