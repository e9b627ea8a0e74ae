"""SWF reader and the conversion of traces into simulated jobs."""

from __future__ import annotations

import gzip

import pytest

from tools.sim import swf
from tools.sim.workload import cores_per_node_of, from_trace, node_shape

TRACE = """\
; Version: 2.2
; Computer: Tiny test machine
; MaxNodes: 4
; MaxProcs: 16
; Note: a note that continues
;       on a second line: with a colon
;
 1   0   5  100  8  -1 -1  8  200 -1 1 1 1 -1 1 1 -1 -1
 2  10  -1  50   3  -1 -1  4   -1 -1 1 2 1 -1 1 1 -1 -1
 3  20  -1   0  -1  -1 -1 -1   -1 -1 5 2 1 -1 1 1 -1 -1
 4  30   0  10  32  -1 -1 32  100 -1 1 3 1 -1 1 1 -1 -1
 5  40   0  -1   4  -1 -1  4  100 -1 0 3 1 -1 1 1 -1 -1
 6  86400 0 60  -1  -1 -1  2   60 -1 1 3 1 -1 1 1 -1 -1
"""


def test_parse_header_and_fields():
    t = swf.parse(TRACE.splitlines(), "tiny")
    assert t.max_procs == 16 and t.max_nodes == 4
    assert t.header["Computer"] == "Tiny test machine"
    assert len(t.records) == 6
    r = t.records[0]
    assert (r.job, r.submit, r.wait, r.run, r.procs, r.req_time, r.status) == (1, 0.0, 5.0, 100.0, 8, 200.0, 1)
    assert isinstance(r.procs, int) and isinstance(r.submit, float)


def test_bad_lines_name_file_and_line():
    with pytest.raises(swf.SwfError, match=r"bad:2: expected 18 fields, got 3"):
        swf.parse(["; MaxProcs: 1", "1 2 3"], "bad")
    with pytest.raises(swf.SwfError, match=r"bad:1: field 'run' is not a number"):
        swf.parse(["1 0 0 x 1 -1 -1 1 1 -1 1 1 1 -1 1 1 -1 -1"], "bad")


def test_read_gzip_and_name(tmp_path):
    path = tmp_path / "Tiny-2024-1.0-cln.swf.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(TRACE)
    t = swf.read(str(path))
    assert t.name == "Tiny-2024-1.0-cln"
    assert len(t.records) == 6
    with pytest.raises(swf.SwfError, match="cannot read trace"):
        swf.read(str(tmp_path / "missing.swf"))


def test_node_shape_spreads_processors_over_nodes():
    assert node_shape(8, 4) == (2, 4)
    assert node_shape(3, 4) == (1, 3)
    assert node_shape(5, 4) == (2, 3)  # 3 + 3 cores rather than 4 + 1
    assert node_shape(1, 1) == (1, 1)
    assert node_shape(100, 1) == (100, 1)


def test_workload_skips_what_never_ran_and_what_cannot_fit():
    t = swf.parse(TRACE.splitlines(), "tiny")
    assert cores_per_node_of(t) == 4
    w = from_trace(t)
    assert [j.id for j in w.jobs] == [1, 2, 6]
    assert w.skipped == {"never ran": 2, "wider than the machine": 1}
    j1, j2, j6 = w.jobs
    assert (j1.nodes, j1.cores, j1.estimate) == (2, 4, 200.0)
    # No requested time: the run time is the estimate.
    assert (j2.procs, j2.nodes, j2.cores, j2.estimate) == (3, 1, 3, 50.0)
    # No allocated processors: the requested ones.
    assert (j6.procs, j6.nodes, j6.cores) == (2, 1, 2)
    assert w.max_nodes == 4 and w.max_procs == 16 and w.cores_per_node == 4
    assert w.lower_bound_node_hours() == pytest.approx((100 * 8 + 50 * 3 + 60 * 2) / 4 / 3600)


def test_slices():
    t = swf.parse(TRACE.splitlines(), "tiny")
    assert [j.id for j in from_trace(t, max_days=1).jobs] == [1, 2]
    assert [j.id for j in from_trace(t, max_jobs=1).jobs] == [1]


def test_implied_utilisation():
    t = swf.parse(TRACE.splitlines()[:9], "tiny")  # jobs 1 and 2
    w = from_trace(t)
    # Job 1 ends at 0 + 5 + 100; job 2 (unknown wait: 0) at 60: span 105 s.
    assert w.implied_utilisation() == pytest.approx((100 * 8 + 50 * 3) / (16 * 105))


def test_override_node_size():
    t = swf.parse(TRACE.splitlines(), "tiny")
    w = from_trace(t, cores_per_node=8)
    assert w.cores_per_node == 8 and w.max_nodes == 2
    assert (w.jobs[0].nodes, w.jobs[0].cores) == (1, 8)
