"""Issue 22, case 5: the wall clock jumps an hour forward, then an hour back, in the middle of a storm.

Six worker processes hammer one SQLite gate (20 calls per compressed minute of 1 s) for 4 s, two
more join just after the first step; the test steps every worker's wall clock at once (the gate's
clock seam, tests/storm/workers.py's FileClock) forward an hour at 1.3 s and back to true time at
2.6 s. Admissions are timed on the real clock.
No window of the real timeline admits more than its limit (a step forward would otherwise look like
an empty log and let a second minute's calls through at once), and no acquisition waits longer than a
window (a step back would otherwise hold the log shut for the hour). tests/storm/test_clock_steps.py
covers one process and Redis; this is the cross-process storm.
"""

from __future__ import annotations

import time
from pathlib import Path

from .helpers import finish, start_state_worker

STORM_WORKERS = Path(__file__).resolve().parents[1] / "storm" / "workers.py"
BUDGET = {"per_minute": 20, "per_hour": 1500, "time_scale": 60.0}
"""20 calls per 1 s window (plus the 0.25 s real-time margin)."""
WINDOW_S = 1.0 + 0.25


def most_in_any_window(times: list[float], width_s: float) -> int:
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= width_s:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_a_storm_through_an_hour_forward_and_back_stays_within_the_limit_and_its_waits(tmp_path: Path) -> None:
    state, clock_file = tmp_path / "state", tmp_path / "offset"
    clock_file.write_text("0")
    start_at = time.time() + 3.0
    spec = {"backend": "sqlite", "where": str(state), "namespace": "n", "budget": BUDGET, "seconds": 4.0,
            "start_at": start_at, "clock_file": str(clock_file)}
    # Two more arrive just after the step forward (as fresh lookups do), when the others sleep till the
    # next window: to them, a log an hour old looks empty.
    late = {**spec, "start_at": start_at + 1.45, "seconds": 2.55}
    procs = [start_state_worker("hammer", worker, script=STORM_WORKERS) for worker in [spec] * 6 + [late] * 2]
    for at, offset in ((1.3, 3600.0), (2.6, 0.0)):
        time.sleep(max(0.0, start_at + at - time.time()))
        clock_file.with_suffix(".new").write_text(str(offset))
        clock_file.with_suffix(".new").replace(clock_file)
    answers = [finish(proc) for proc in procs]
    ended = time.time() - start_at
    assert all(answer["on_time"] for answer in answers), "a worker started late: machine too busy"
    admitted = [t for answer in answers for t in answer["admitted"]]
    most = most_in_any_window(admitted, WINDOW_S - 0.25)
    print(f"\n{len(admitted)} calls admitted in 4 s through +1 h and -1 h steps; at most {most} in any 1 s; "
          f"the storm ended {ended:.3f} s after its start")
    assert most <= BUDGET["per_minute"]  # the step forward did not empty the log
    assert len(admitted) == 4 * BUDGET["per_minute"]  # windows at 0, 1.25, 2.5, 3.75 s: the step back held none shut
    # Each worker stops at 4 s: it waits while a slot fits before then, and is refused at once (at most
    # once, at the end) when the next slot would not; nobody waits past the storm's end for the hour.
    assert all(answer["rate_limited"] <= 1 for answer in answers)
    assert ended < 4.0 + 1.0
