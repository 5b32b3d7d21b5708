"""The sessions benchmark is code too: at a tiny size it must build its data set, find every live session
by its token and accept every code. Timings are printed by the script, never asserted here."""
from __future__ import annotations

import bench.sessions as sessions_bench


def test_tiny_run_finds_every_session_and_accepts_every_code(capsys):
    rc = sessions_bench.main(["--accounts", "20", "--sessions", "200", "--lookups", "50", "--totp-checks", "20"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "data set: 20 accounts, 200 sessions (100 live)" in out
    for line in ("account by id (baseline)", "live session by token", "TOTP check", "recovery codes: issuing ten"):
        assert line in out, out
