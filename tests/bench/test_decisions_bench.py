"""The benchmark is code too: at a tiny size it must build its data set and get every answer right.

Timings are printed by the script, never asserted here. The benchmark always
uses its own temporary SQLite file (it needs an empty database)."""
from __future__ import annotations

import bench.decisions as decisions_bench


def test_tiny_run_gives_every_expected_answer(capsys):
    rc = decisions_bench.main(["--enterprises", "30", "--persons", "200", "--rights", "600",
                               "--decisions", "300", "--warmup", "20", "--seed", "7"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "decision reasons as expected: 300/300" in out
    assert "casbin agrees with the decision point (allowed/denied): 300/300" in out
