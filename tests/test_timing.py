"""Tests for schemas.timing: the TAMS timestamp/timerange grammar, set semantics and pydantic use.

Three independent oracles back the property tests:
* a brute-force model that treats a range as the set of integer instants it holds, over
  a small window of the timeline;
* the spec's own regular expressions (for which strings are accepted);
* mediatimestamp, the reference library, on a 3 ns grid where its continuous reading of
  the timeline and our discrete one cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mediatimestamp.immutable import TimeRange as MTR
from pydantic import BaseModel, ValidationError

from schemas.timing import (
    INT64_MAX,
    INT64_MIN,
    NS_PER_SEC,
    EmptyTimeRange,
    InvalidTimeRange,
    InvalidTimestamp,
    TimeRange,
    Timestamp,
    format_timestamp,
    parse_timestamp,
)

# The patterns as published in TAMS 8.2 api/schemas/timestamp.json and timerange.json.
SPEC_TIMESTAMP_PATTERN = "^-?(0|[1-9][0-9]*):(0|[1-9][0-9]{0,8})$"
SPEC_TIMERANGE_PATTERN = (
    "^(\\[|\\()?(-?(0|[1-9][0-9]*):(0|[1-9][0-9]{0,8}))?"
    "(_(-?(0|[1-9][0-9]*):(0|[1-9][0-9]{0,8}))?)?(\\]|\\))?$"
)


def spec_accepts(pattern: str, text: str) -> bool:
    """Match as a JSON-schema (ECMA) validator would: "$" is the true end of the string."""
    return re.fullmatch(pattern[1:-1], text) is not None


P = TimeRange.parse

# ============================================================================ timestamps


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0:0", 0),
        ("-0:0", 0),
        ("0:1", 1),
        ("0:50", 50),
        ("1:40000000", 1_040_000_000),
        ("1:0", NS_PER_SEC),
        ("0:999999999", 999_999_999),
        ("-1:500000000", -1_500_000_000),
        ("-0:800000000", -800_000_000),
        ("1694429247:40000000", 1694429247 * NS_PER_SEC + 40_000_000),
        ("281474976710655:999999999", (2**48 - 1) * NS_PER_SEC + 999_999_999),
        ("123456789012345678901234567890:7", 123456789012345678901234567890 * NS_PER_SEC + 7),
    ],
)
def test_parse_timestamp_reads_nanoseconds_as_an_integer_count_with_a_whole_value_sign(text: str, ns: int) -> None:
    assert parse_timestamp(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "0:050000000",  # leading zero in nanoseconds
        "1:1000000000",  # nanoseconds out of range
        "abc",
        "01:0",  # leading zero in seconds
        "00:0",
        "",
        "1",
        ":0",
        "1:",
        "+1:0",
        "--1:0",
        "-:0",
        "1.5:0",
        "1:0 ",
        " 1:0",
        "1:0\n",  # Python's "$" would let this through; the spec's does not
        "1:-1",
        "[1:0]",
        "\u0661:\u0660",  # non-ASCII digits that int() would accept
        "1" * 5000 + ":0",  # beyond Python's int-from-str digit limit: still a typed error
    ],
)
def test_parse_timestamp_rejects_strings_off_the_spec_grammar(text: str) -> None:
    with pytest.raises(InvalidTimestamp):
        parse_timestamp(text)


def test_parse_timestamp_raises_typed_error_for_non_strings() -> None:
    with pytest.raises(InvalidTimestamp):
        parse_timestamp(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0:0"),
        (1, "0:1"),
        (-1, "-0:1"),
        (50, "0:50"),
        (1_040_000_000, "1:40000000"),
        (-1_500_000_000, "-1:500000000"),
        (-NS_PER_SEC, "-1:0"),
        (10**40, f"{10**31}:0"),
    ],
)
def test_format_timestamp_is_canonical(ns: int, text: str) -> None:
    assert format_timestamp(ns) == text


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_timestamp_format_then_parse_round_trips_and_matches_spec_pattern(ns: int) -> None:
    text = format_timestamp(ns)
    assert parse_timestamp(text) == ns
    assert spec_accepts(SPEC_TIMESTAMP_PATTERN, text)
    assert text != "-0:0"


TIMESTAMPISH = st.text(alphabet="-0123456789:", max_size=14)


@given(
    st.one_of(
        TIMESTAMPISH,
        st.integers().map(format_timestamp),
        st.from_regex(SPEC_TIMESTAMP_PATTERN[1:-1], fullmatch=True),
    )
)
def test_parse_timestamp_accepts_exactly_what_the_spec_pattern_accepts(text: str) -> None:
    accepted = True
    try:
        parse_timestamp(text)
    except InvalidTimestamp:
        accepted = False
    assert accepted == spec_accepts(SPEC_TIMESTAMP_PATTERN, text)


# ============================================================================ timerange grammar

S = NS_PER_SEC


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # clusivity as written
        ("[0:0_10:0)", "[0:0_10:0)"),
        ("[0:0_10:0]", "[0:0_10:0]"),
        ("(0:0_10:0]", "(0:0_10:0]"),
        ("(0:0_10:0)", "(0:0_10:0)"),
        # a bounded side with no marker is inclusive
        ("0:0_10:0", "[0:0_10:0]"),
        ("[0:0_10:0", "[0:0_10:0]"),
        ("0:0_10:0)", "[0:0_10:0)"),
        # half-bounded: the unbounded side's marker is ignored
        ("(5:0_", "(5:0_"),
        ("(5:0_)", "(5:0_"),
        ("(5:0_]", "(5:0_"),
        ("5:0_", "[5:0_"),
        ("[5:0_", "[5:0_"),
        ("_10:0]", "_10:0]"),
        ("_10:0)", "_10:0)"),
        ("[_10:0)", "_10:0)"),
        ("(_10:0", "_10:0]"),
        # eternity, with or without stray markers
        ("_", "_"),
        ("[_", "_"),
        ("(_)", "_"),
        ("[_]", "_"),
        ("_)", "_"),
        # never
        ("()", "()"),
        ("", "()"),
        ("[]", "()"),
        ("(", "()"),
        ("]", "()"),
        # instantaneous spellings
        ("[1:0]", "[1:0]"),
        ("[1:0_1:0]", "[1:0]"),
        ("1:0", "[1:0]"),
        ("[1:0", "[1:0]"),
        ("1:0]", "[1:0]"),
        # an instant cannot have an exclusive marker: empty
        ("(1:0]", "()"),
        ("[1:0)", "()"),
        ("(1:0)", "()"),
        ("(1:0", "()"),
        ("1:0)", "()"),
        ("[1:0_1:0)", "()"),
        ("(1:0_1:0]", "()"),
        ("(1:0_1:0)", "()"),
        # end before start: empty
        ("2:0_1:0", "()"),
        ("[2:0_1:0]", "()"),
        ("[0:1_0:0]", "()"),
        # negatives and -0:0
        ("[-1:500000000_-0:500000000)", "[-1:500000000_-0:500000000)"),
        ("(-10:0_", "(-10:0_"),
        ("-0:0", "[0:0]"),
        ("[-0:0_1:0)", "[0:0_1:0)"),
        ("[-0:0_0:0]", "[0:0]"),
        # big seconds (48-bit PTP and beyond int64)
        ("[281474976710655:0_281474976710656:0)", "[281474976710655:0_281474976710656:0)"),
        ("[99999999999999999999:0_", "[99999999999999999999:0_"),
        # the discrete nanosecond timeline
        ("(0:0_0:1)", "()"),
        ("[0:0_0:1)", "[0:0]"),
        ("(0:0_0:1]", "[0:1]"),
        ("(0:0_0:2)", "[0:1]"),
        ("(0:999999999_1:1)", "[1:0]"),
        ("(0:0_0:2]", "(0:0_0:2]"),
    ],
)
def test_parse_then_str_gives_the_canonical_spelling(text: str, canonical: str) -> None:
    r = P(text)
    assert str(r) == canonical
    assert P(canonical) == r


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("[0:0_10:0)", (0, 10 * S, True, False)),
        ("(5:0_", (5 * S, None, False, False)),
        ("_10:0]", (None, 10 * S, False, True)),
        ("_", (None, None, False, False)),
        ("[1:0]", (S, S, True, True)),
        ("[-1:500000000_-0:500000000)", (-3 * S // 2, -S // 2, True, False)),
        ("[99999999999999999999:0_", (99999999999999999999 * S, None, True, False)),
    ],
)
def test_parse_stores_nanosecond_bounds_and_clusivity(text: str, fields: tuple[object, ...]) -> None:
    r = P(text)
    assert (r.start, r.end, r.include_start, r.include_end) == fields


@pytest.mark.parametrize(
    "text",
    [
        "0:050000000",
        "1:1000000000",
        "abc",
        "[1:0_2:0_3:0)",
        "01:0",
        "[01:0_2:0)",
        "[1:0_02:0)",
        "[1:0__2:0)",
        "__",
        "((1:0_2:0)",
        "[1:0_2:0))",
        "{1:0_2:0}",
        "[1:0-2:0)",
        "[1:0 _ 2:0)",
        " [1:0_2:0)",
        "[1:0_2:0)\n",
        "1:0_2:0_",
        ")(",
        "[1:0_2:0)[",
        "[1" + "0" * 5000 + ":0_",
    ],
)
def test_parse_rejects_strings_off_the_spec_grammar(text: str) -> None:
    with pytest.raises(InvalidTimeRange):
        P(text)


def test_parse_raises_typed_error_for_non_strings() -> None:
    with pytest.raises(InvalidTimeRange):
        P(None)  # type: ignore[arg-type]


TIMERANGEISH = st.one_of(
    st.text(alphabet="[]()_-0123456789:", max_size=16),
    st.from_regex(SPEC_TIMERANGE_PATTERN[1:-1], fullmatch=True),
    # valid strings with one character changed, to probe the edges of the grammar
    st.tuples(
        st.from_regex(SPEC_TIMERANGE_PATTERN[1:-1], fullmatch=True),
        st.integers(0, 40),
        st.sampled_from(list("[]()_-0123456789:")),
    ).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]),
)


@given(TIMERANGEISH)
def test_parse_accepts_exactly_what_the_spec_pattern_accepts(text: str) -> None:
    accepted = True
    try:
        P(text)
    except InvalidTimeRange:
        accepted = False
    assert accepted == spec_accepts(SPEC_TIMERANGE_PATTERN, text)


def test_instant_spellings_are_equal() -> None:
    assert P("[3:0]") == P("[3:0_3:0]") == P("3:0") == TimeRange.instant(3 * S)
    assert P("0:0_1:0") == P("[0:0_1:0]")


def test_every_empty_range_is_the_one_never_value() -> None:
    empties = [P(t) for t in ("()", "", "(1:0]", "[1:0)", "2:0_1:0", "(0:0_0:1)")]
    empties += [TimeRange(5, 3, True, True), TimeRange(7, 7, False, True), TimeRange.never()]
    assert all(r == TimeRange.never() for r in empties)
    assert len(set(empties)) == 1
    assert all(r.is_empty and str(r) == "()" for r in empties)


def test_direct_construction_is_normalised_like_parse() -> None:
    assert TimeRange(None, 5, True, True) == P("_0:5]")
    assert TimeRange(None, 5, True, True).include_start is False
    assert TimeRange(None, None, True, True) == TimeRange.eternity()
    assert TimeRange(4, 6, False, False) == TimeRange.instant(5)
    assert TimeRange(0, 10, 1, 0).include_start is True  # type: ignore[arg-type]


def test_timerange_is_immutable_and_hashable() -> None:
    r = P("[0:0_1:0)")
    with pytest.raises(FrozenInstanceError):
        r.start = 5  # type: ignore[misc]
    assert {r: 1}[P("0:0_1:0)")] == 1


def test_named_constructors_give_the_spec_spellings() -> None:
    assert str(TimeRange.never()) == "()"
    assert str(TimeRange.eternity()) == "_"
    assert str(TimeRange.instant(1_040_000_000)) == "[1:40000000]"
    assert repr(P("[0:0_1:0)")) == "TimeRange.parse('[0:0_1:0)')"


@pytest.mark.parametrize(
    ("text", "empty", "eternity", "instant", "bounded"),
    [
        ("()", True, False, False, True),
        ("_", False, True, False, False),
        ("[1:0]", False, False, True, True),
        ("[0:0_1:0)", False, False, False, True),
        ("(0:0_0:2)", False, False, True, True),
        ("[0:0_", False, False, False, False),
        ("_0:0]", False, False, False, False),
    ],
)
def test_predicates_classify_ranges(text: str, empty: bool, eternity: bool, instant: bool, bounded: bool) -> None:
    r = P(text)
    assert (r.is_empty, r.is_eternity, r.is_instantaneous, r.is_bounded) == (empty, eternity, instant, bounded)


def test_adjacent_segments_with_exclusive_end_do_not_overlap() -> None:
    # From the spec's note on sorting segments.
    assert not P("[1:0_2:0)").overlaps(P("[2:0]"))
    assert P("[1:0_2:0]").overlaps(P("[2:0]"))
    assert P("[1:0_2:0)").hull(P("[2:0_3:0)")) == P("[1:0_3:0)")


def test_covers_is_complete_coverage_and_everything_covers_never() -> None:
    assert P("[0:0_10:0)").covers(P("[2:0_3:0)"))
    assert not P("[0:0_10:0)").covers(P("[2:0_10:0]"))
    assert P("_").covers(P("(5:0_"))
    assert not P("[0:0_").covers(P("_"))
    assert TimeRange.never().covers(TimeRange.never())
    assert P("[1:0]").covers(TimeRange.never())
    assert not TimeRange.never().covers(P("[1:0]"))


def test_shift_applies_an_offset_to_bounded_sides() -> None:
    assert P("[0:0_1:0)").shift(10 * S) == P("[10:0_11:0)")
    assert P("(5:0_").shift(-6 * S) == P("(-1:0_")
    assert TimeRange.eternity().shift(3) == TimeRange.eternity()
    assert TimeRange.never().shift(3) == TimeRange.never()


# ============================================================================ int64 half-open form


@pytest.mark.parametrize(
    ("text", "half_open"),
    [
        ("[0:0_10:0)", (0, 10 * S)),
        ("(0:0_10:0]", (1, 10 * S + 1)),
        ("[1:0]", (S, S + 1)),
        ("_", (INT64_MIN, INT64_MAX)),
        ("[5:0_", (5 * S, INT64_MAX)),
        ("_5:0)", (INT64_MIN, 5 * S)),
        ("[-1:0_0:0)", (-S, 0)),
        # beyond int64: clamped
        ("[99999999999999999999:0_99999999999999999999:1)", (INT64_MAX, INT64_MAX)),
        ("[-99999999999999999999:0_0:0)", (INT64_MIN, 0)),
    ],
)
def test_half_open_gives_the_int64_index_form(text: str, half_open: tuple[int, int]) -> None:
    assert P(text).half_open() == half_open


def test_half_open_of_never_raises_empty_time_range() -> None:
    with pytest.raises(EmptyTimeRange):
        TimeRange.never().half_open()


@pytest.mark.parametrize(
    ("r", "fits"),
    [
        (P("[0:0_10:0)"), True),
        (P("_"), True),
        (P("[1694429247:0_"), True),
        (TimeRange.never(), False),
        (P("[99999999999999999999:0_"), False),
        (P("_-99999999999999999999:0]"), False),
        (TimeRange(INT64_MIN, 0, True, False), False),  # bounded start on the sentinel
        (TimeRange(INT64_MIN, 0, False, False), True),  # (MIN -> MIN + 1
        (TimeRange(INT64_MAX - 1, None, False, False), False),  # (MAX-1 -> MAX
        (TimeRange(None, INT64_MAX - 1, False, True), False),  # MAX-1] -> MAX
        (TimeRange(None, INT64_MAX - 2, False, True), True),
        (TimeRange(None, INT64_MAX, False, False), False),
        (TimeRange(None, INT64_MIN + 1, False, False), True),
    ],
)
def test_fits_int64_flags_bounds_that_would_clamp_or_hit_a_sentinel(r: TimeRange, fits: bool) -> None:
    assert r.fits_int64 is fits


@pytest.mark.parametrize(
    ("half_open", "canonical"),
    [
        ((0, 10), "[0:0_0:10)"),
        ((INT64_MIN, 10), "_0:10)"),
        ((5, INT64_MAX), "[0:5_"),
        ((INT64_MIN, INT64_MAX), "_"),
        ((5, 5), "()"),
        ((6, 5), "()"),
        ((5, 6), "[0:5]"),
    ],
)
def test_from_half_open_reads_sentinels_as_unbounded(half_open: tuple[int, int], canonical: str) -> None:
    assert str(TimeRange.from_half_open(*half_open)) == canonical


def test_from_half_open_keeps_values_next_to_the_sentinels_bounded() -> None:
    r = TimeRange.from_half_open(INT64_MIN + 1, INT64_MAX - 1)
    assert (r.start, r.end) == (INT64_MIN + 1, INT64_MAX - 1)
    assert r.fits_int64
    assert r.half_open() == (INT64_MIN + 1, INT64_MAX - 1)


@pytest.mark.parametrize(
    ("a", "b", "intersection", "hull"),
    [
        # same instants, different spellings: "[" starts and ")" ends win, in either order
        ("(0:0_0:5)", "[0:1_0:5)", "[0:1_0:5)", "[0:1_0:5)"),
        ("[0:0_0:4]", "[0:0_0:5)", "[0:0_0:5)", "[0:0_0:5)"),
        ("(0:0_0:9]", "[0:1_0:10)", "[0:1_0:10)", "[0:1_0:10)"),
        ("(0:0_", "[0:1_0:3]", "[0:1_0:3]", "[0:1_"),
    ],
)
def test_intersect_and_hull_prefer_segment_style_markers_on_ties(a: str, b: str, intersection: str, hull: str) -> None:
    for x, y in ((a, b), (b, a)):
        assert str(P(x).intersect(P(y))) == intersection
        assert str(P(x).hull(P(y))) == hull


# ============================================================================ model-based properties

LO, HI = -8, 8  # bounds are drawn from here ...
WINDOW = range(LO - 4, HI + 5)  # ... and instants are checked here, so unbounded sides reach past every bound
WINDOW_SET = frozenset(WINDOW)

bound = st.one_of(st.none(), st.integers(LO, HI))


def model_of_components(opener: str, start: int | None, under: bool, end: int | None, closer: str) -> frozenset[int]:
    """The grammar read straight from the spec, as a set of instants in WINDOW."""
    if not under:
        if start is None:
            return frozenset()
        end = start  # bare timestamp: start == end, markers as written
    inc_s = opener != "("
    inc_e = closer != ")"
    return frozenset(
        t
        for t in WINDOW
        if (start is None or t > start or (t == start and inc_s)) and (end is None or t < end or (t == end and inc_e))
    )


@st.composite
def parsed_ranges(draw: st.DrawFn) -> tuple[TimeRange, frozenset[int]]:
    """A range written in any spelling the grammar allows, with its model set."""
    opener = draw(st.sampled_from(["", "[", "("]))
    closer = draw(st.sampled_from(["", "]", ")"]))
    under = draw(st.booleans())
    start = draw(bound)
    end = draw(bound) if under else None
    text = (
        opener
        + ("" if start is None else format_timestamp(start))
        + ("_" if under else "")
        + ("" if end is None else format_timestamp(end))
        + closer
    )
    return P(text), model_of_components(opener, start, under, end, closer)


@st.composite
def constructed_ranges(draw: st.DrawFn) -> tuple[TimeRange, frozenset[int]]:
    """A range built with the dataclass constructor (exercising its normalisation), with its model set."""
    start, end = draw(bound), draw(bound)
    inc_s, inc_e = draw(st.booleans()), draw(st.booleans())
    model = frozenset(
        t
        for t in WINDOW
        if (start is None or t > start or (t == start and inc_s)) and (end is None or t < end or (t == end and inc_e))
    )
    return TimeRange(start, end, inc_s, inc_e), model


ranges = st.one_of(parsed_ranges(), constructed_ranges())


def members(r: TimeRange) -> frozenset[int]:
    return frozenset(t for t in WINDOW if r.contains_ns(t))


def convex(points: frozenset[int]) -> frozenset[int]:
    return frozenset(range(min(points), max(points) + 1)) if points else frozenset()


@given(ranges)
def test_membership_and_predicates_agree_with_the_instant_set_model(rm: tuple[TimeRange, frozenset[int]]) -> None:
    r, model = rm
    assert members(r) == model
    assert r.is_empty == (not model)
    assert r.is_instantaneous == (len(model) == 1)
    assert r.is_eternity == (model == WINDOW_SET)
    if r.is_empty:
        assert r == TimeRange.never()


@given(ranges)
def test_str_is_canonical_and_parse_round_trips(rm: tuple[TimeRange, frozenset[int]]) -> None:
    r, _ = rm
    text = str(r)
    assert spec_accepts(SPEC_TIMERANGE_PATTERN, text)
    assert P(text) == r
    assert str(P(text)) == text
    assert "-0:0" not in text  # zero is never written with a sign


@given(ranges)
def test_constructor_leaves_normalised_values_unchanged(rm: tuple[TimeRange, frozenset[int]]) -> None:
    r, _ = rm
    assert TimeRange(r.start, r.end, r.include_start, r.include_end) == r


@given(ranges, ranges)
def test_overlaps_means_sharing_an_instant(a: tuple[TimeRange, frozenset[int]], b: tuple[TimeRange, frozenset[int]]) -> None:
    (ra, ma), (rb, mb) = a, b
    assert ra.overlaps(rb) == bool(ma & mb)
    assert ra.overlaps(rb) == rb.overlaps(ra)


@given(ranges, ranges)
def test_covers_means_every_instant_of_other_is_in_self(
    a: tuple[TimeRange, frozenset[int]], b: tuple[TimeRange, frozenset[int]]
) -> None:
    (ra, ma), (rb, mb) = a, b
    assert ra.covers(rb) == (mb <= ma)


@given(ranges, ranges)
def test_intersect_is_set_intersection_and_commutes(
    a: tuple[TimeRange, frozenset[int]], b: tuple[TimeRange, frozenset[int]]
) -> None:
    (ra, ma), (rb, mb) = a, b
    both = ra.intersect(rb)
    assert members(both) == ma & mb
    assert both == rb.intersect(ra)
    assert ra.covers(both) and rb.covers(both)


@given(ranges, ranges)
def test_hull_is_the_smallest_range_containing_both(
    a: tuple[TimeRange, frozenset[int]], b: tuple[TimeRange, frozenset[int]]
) -> None:
    (ra, ma), (rb, mb) = a, b
    h = ra.hull(rb)
    assert h.covers(ra) and h.covers(rb)
    assert members(h) == convex(ma | mb)
    assert h == rb.hull(ra)
    if rb.is_empty:
        assert h == ra


@given(ranges)
def test_half_open_agrees_with_membership(rm: tuple[TimeRange, frozenset[int]]) -> None:
    r, model = rm
    if r.is_empty:
        with pytest.raises(EmptyTimeRange):
            r.half_open()
        return
    lo, hi = r.half_open()
    assert INT64_MIN <= lo < hi <= INT64_MAX
    assert frozenset(t for t in WINDOW if lo <= t < hi) == model
    assert r.fits_int64
    back = TimeRange.from_half_open(lo, hi)
    assert back.covers(r) and r.covers(back)


@given(ranges, ranges)
def test_half_open_overlap_test_equals_overlaps_for_non_empty_ranges(
    a: tuple[TimeRange, frozenset[int]], b: tuple[TimeRange, frozenset[int]]
) -> None:
    (ra, _), (rb, _) = a, b
    if ra.is_empty or rb.is_empty:
        return
    a_lo, a_hi = ra.half_open()
    b_lo, b_hi = rb.half_open()
    assert (a_lo < b_hi and b_lo < a_hi) == ra.overlaps(rb)


@given(ranges, st.integers(-30, 30))
def test_shift_moves_every_instant(rm: tuple[TimeRange, frozenset[int]], k: int) -> None:
    r, _ = rm
    moved = r.shift(k)
    assert all(moved.contains_ns(t) == r.contains_ns(t - k) for t in range(LO - 40, HI + 40))
    assert moved.shift(-k) == r


# ============================================================================ differential: mediatimestamp
# mediatimestamp reads the timeline as continuous, so "(0:0_0:1)" is non-empty there
# while it holds no nanosecond here. With every bound on a 3 ns grid a range that is
# non-empty in the continuous sense holds an instant, and one holding exactly one
# instant is written [a], so both libraries must agree exactly.

grid_ts = st.one_of(st.integers(-4, 4), st.integers(-(10**12), 10**12)).map(lambda k: 3 * k)


@st.composite
def grid_strings(draw: st.DrawFn) -> str:
    opener = draw(st.sampled_from(["", "[", "("]))
    closer = draw(st.sampled_from(["", "]", ")"]))
    under = draw(st.booleans())
    start = draw(st.one_of(st.none(), grid_ts))
    end = draw(st.one_of(st.none(), grid_ts)) if under else None
    return (
        opener
        + ("" if start is None else format_timestamp(start))
        + ("_" if under else "")
        + ("" if end is None else format_timestamp(end))
        + closer
    )


def is_bare_timestamp_with_exclusive_marker(text: str) -> bool:
    """The one grammar case where mediatimestamp departs from the spec: it reads "(a]" as "[a]"."""
    return "_" not in text and ":" in text and (text.startswith("(") or text.endswith(")"))


@pytest.mark.parametrize("text", ["(1:0]", "[1:0)", "(1:0)"])
def test_bare_timestamp_with_exclusive_marker_is_empty_unlike_mediatimestamp(text: str) -> None:
    assert P(text).is_empty
    assert str(MTR.from_str(text)) == "[1:0]"  # documented divergence; the spec says empty


def test_sub_nanosecond_gaps_are_empty_unlike_mediatimestamp() -> None:
    assert P("(0:0_0:1)").is_empty
    assert not MTR.from_str("(0:0_0:1)").is_empty()  # documented divergence: no instant fits


@settings(max_examples=300)
@given(grid_strings())
def test_parse_agrees_with_mediatimestamp_on_emptiness_and_spelling(text: str) -> None:
    ours = P(text)
    if is_bare_timestamp_with_exclusive_marker(text):
        assert ours.is_empty
        return
    theirs = MTR.from_str(text)
    assert ours.is_empty == theirs.is_empty()
    assert str(ours) == str(theirs)


@settings(max_examples=300)
@given(grid_strings(), grid_strings())
def test_set_operations_agree_with_mediatimestamp(a: str, b: str) -> None:
    if is_bare_timestamp_with_exclusive_marker(a) or is_bare_timestamp_with_exclusive_marker(b):
        return
    ra, rb = P(a), P(b)
    ma, mb = MTR.from_str(a), MTR.from_str(b)
    assert ra.overlaps(rb) == ma.overlaps_with_timerange(mb)
    assert str(ra.intersect(rb)) == str(ma.intersect_with(mb))
    assert str(ra.hull(rb)) == str(ma.extend_to_encompass_timerange(mb))
    if not ra.is_empty and not rb.is_empty:  # mediatimestamp says never covers nothing, even never
        assert ra.covers(rb) == ma.contains_subrange(mb)


# ============================================================================ pydantic


class Segmentish(BaseModel):
    timerange: TimeRange
    ts_offset: Timestamp = 0
    object_timerange: TimeRange | None = None


def test_pydantic_fields_parse_strings_and_dump_canonical_strings() -> None:
    m = Segmentish(timerange="0:0_1:0)", ts_offset="-0:0")  # type: ignore[arg-type]
    assert m.timerange == P("[0:0_1:0)")
    assert m.ts_offset == 0
    assert m.model_dump(mode="json") == {"timerange": "[0:0_1:0)", "ts_offset": "0:0", "object_timerange": None}
    assert m.model_dump() == {"timerange": "[0:0_1:0)", "ts_offset": "0:0", "object_timerange": None}


def test_pydantic_json_round_trip_preserves_values() -> None:
    m = Segmentish(
        timerange=P("[1694429247:0_1694429248:0)"),
        ts_offset=-1_500_000_000,
        object_timerange=P("[0:0_1:0)"),
    )
    text = m.model_dump_json()
    assert '"ts_offset":"-1:500000000"' in text
    assert Segmentish.model_validate_json(text) == m
    assert Segmentish.model_validate(m.model_dump()) == m


def test_pydantic_python_mode_accepts_values_and_json_mode_accepts_only_strings() -> None:
    assert Segmentish.model_validate({"timerange": TimeRange.eternity(), "ts_offset": 5}).ts_offset == 5
    with pytest.raises(ValidationError):
        Segmentish.model_validate_json('{"timerange": "_", "ts_offset": 5}')
    with pytest.raises(ValidationError):
        Segmentish.model_validate({"timerange": "_", "ts_offset": True})
    with pytest.raises(ValidationError):
        Segmentish.model_validate({"timerange": "_", "ts_offset": 1.5})
    with pytest.raises(ValidationError):
        Segmentish.model_validate({"timerange": 5})


@pytest.mark.parametrize(
    "payload",
    [
        '{"timerange": "[1:0_2:0_3:0)"}',
        '{"timerange": "abc"}',
        '{"timerange": "_", "ts_offset": "01:0"}',
        '{"timerange": "_", "ts_offset": "1:1000000000"}',
    ],
)
def test_pydantic_reports_bad_strings_as_validation_errors(payload: str) -> None:
    with pytest.raises(ValidationError):
        Segmentish.model_validate_json(payload)


def test_pydantic_json_schema_publishes_the_spec_patterns() -> None:
    props = Segmentish.model_json_schema()["properties"]
    assert props["timerange"]["type"] == "string"
    assert props["timerange"]["pattern"] == SPEC_TIMERANGE_PATTERN
    assert props["ts_offset"]["type"] == "string"
    assert props["ts_offset"]["pattern"] == SPEC_TIMESTAMP_PATTERN
