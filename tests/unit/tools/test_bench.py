"""tools/bench.py, the one benchmark script of ``make bench``."""

from __future__ import annotations

import re

import pytest

from tools import bench


def test_decide_times_the_policy_on_a_generated_world(capsys):
    assert bench.main(["--decide", "--jobs", "300", "--nodes", "40", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "policy.decide: 300 pending jobs, 40 nodes, 4 resources" in out
    assert re.search(r"cpu +median [0-9.]+ s", out)
    assert re.search(r"plan: launch \d+, \d+ node actions, \d+ unfit jobs", out)


def test_the_decide_world_is_the_same_for_a_seed():
    first = bench._decide_world(50, 10, seed=1)
    assert first == bench._decide_world(50, 10, seed=1)
    assert first != bench._decide_world(50, 10, seed=2)


def test_an_unknown_policy_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--policies", "reserve"])
    assert "unknown policy 'reserve'; choose from static, powersave" in capsys.readouterr().err
