"""Slurm host list expansion and compression."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils.hostlist import HostlistError, compress, expand, sort_key


@pytest.mark.parametrize(
    ("hostlist", "names"),
    [
        ("a[1-3,5],b07,c[01-02]-x", ["a1", "a2", "a3", "a5", "b07", "c01-x", "c02-x"]),
        ("dcaas-small-[1-2]", ["dcaas-small-1", "dcaas-small-2"]),
        ("n[08-11]", ["n08", "n09", "n10", "n11"]),
        ("n[9-10]", ["n9", "n10"]),
        ("n[098-100]", ["n098", "n099", "n100"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("gpu5", ["gpu5"]),
        ("head,gpu[3]", ["head", "gpu3"]),
        (" a1 , a2 ", ["a1", "a2"]),
        ("a[2,1]", ["a2", "a1"]),  # order as written
        ("", []),
        ("(null)", []),
        (None, []),
    ],
)
def test_expand(hostlist: str | None, names: list[str]) -> None:
    assert expand(hostlist) == names


@pytest.mark.parametrize(
    ("hostlist", "message"),
    [
        ("n[1-", "not closed"),
        ("n]1", "without '['"),
        ("n[[1]]", "nested"),
        ("n[3-1]", "backwards"),
        ("n[a-b]", "not a number"),
        ("n[1-2-3]", "not a number"),
        ("n[]", "not a number"),
    ],
)
def test_expand_errors(hostlist: str, message: str) -> None:
    with pytest.raises(HostlistError, match=re.escape(message)):
        expand(hostlist)


def test_expand_limit() -> None:
    assert len(expand("n[1-1000]", limit=1000)) == 1000
    with pytest.raises(HostlistError, match="more than 1000"):
        expand("n[1-1000],m1", limit=1000)
    with pytest.raises(HostlistError, match="more than"):
        expand("n[1-100000000]")


@pytest.mark.parametrize(
    ("names", "hostlist"),
    [
        (["n1", "n2", "n3", "n5"], "n[1-3,5]"),
        (["n3", "n1", "n2", "n2"], "n[1-3]"),
        (["c01", "c02", "c10"], "c[01-02,10]"),
        (["n9", "n10"], "n[9-10]"),
        (["n09", "n10"], "n[09-10]"),
        (["n9", "n010"], "n[9,010]"),
        (["c01-x", "c02-x"], "c[01-02]-x"),
        (["b1", "a2", "a1", "head"], "a[1-2],b1,head"),
        (["gpu5"], "gpu5"),
        (["head"], "head"),
        (["dcaas-small-0a1b2c", "dcaas-small-0a1b2d"], "dcaas-small-0a1b2c,dcaas-small-0a1b2d"),
        ([], ""),
    ],
)
def test_compress(names: list[str], hostlist: str) -> None:
    assert compress(names) == hostlist


@pytest.mark.parametrize("bad", ["", "a b", "a,b", "a[1]", 5])
def test_compress_refuses_what_it_cannot_write(bad) -> None:
    with pytest.raises(HostlistError):
        compress(["ok1", bad])


NAMES = st.lists(st.from_regex(r"[a-z0-9][a-z0-9-]{0,7}", fullmatch=True), max_size=30)


@given(NAMES)
def test_expand_of_compress_is_the_sorted_set(names: list[str]) -> None:
    assert expand(compress(names)) == sorted(set(names), key=sort_key)


@given(NAMES)
def test_compress_is_stable(names: list[str]) -> None:
    once = compress(names)
    assert compress(expand(once)) == once


@given(
    st.from_regex(r"[a-z][a-z-]{0,5}", fullmatch=True),
    st.integers(0, 500),
    st.integers(0, 50),
    st.integers(1, 4),
)
def test_expand_of_a_range(prefix: str, lo: int, span: int, width: int) -> None:
    first, last = str(lo).zfill(width), str(lo + span).zfill(width)
    names = expand(f"{prefix}[{first}-{last}]")
    assert len(names) == span + 1
    assert names[0] == prefix + first and names[-1] == prefix + str(lo + span).zfill(len(first))


@pytest.mark.parametrize(
    ("hostlist", "message"),
    [
        ("n[" + "9" * 5000 + "]", "not a number"),  # int() of it is a ValueError, not a HostlistError
        ("n[\u0661-\u0663]", "not a number"),  # Arabic-Indic digits: no host is named with them
        ("x" * 300 + "[1-2]", "longer than 255"),
        ("n" * 252 + "[1-1000]", "longer than 255"),  # counted with its widest number
    ],
)
def test_expand_refuses_what_no_slurm_prints(hostlist: str, message: str) -> None:
    with pytest.raises(HostlistError, match=re.escape(message)) as err:
        expand(hostlist)
    assert len(str(err.value)) < 300  # the list is echoed cut short


def test_expand_takes_text_only() -> None:
    with pytest.raises(HostlistError, match="is text, not int"):
        expand(5)  # type: ignore[arg-type]


HOSTLIST_PIECES = st.sampled_from(
    ["[", "]", ",", "-", " ", "0", "07", "12", "9" * 25, "\u0663", "n", "abc", "x" * 90, "(null)", "N/A"]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(HOSTLIST_PIECES, max_size=30).map("".join)))
def test_expand_of_any_text_is_names_or_hostlist_error(text: str) -> None:
    try:
        names = expand(text, limit=1000)
    except HostlistError as exc:
        assert len(str(exc)) < 300
        return
    assert len(names) <= 1000
    assert all(isinstance(name, str) and 0 < len(name) <= 255 for name in names)
