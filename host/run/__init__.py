"""One run, down the chain: spec.py (what is asked: RunSpec, RunOptions, RunResult) ->
session.py (one link, one agent, its hello, for many runs) -> samples.py (the sample set)
-> execute.py (push, run, collect; ``execute`` on a session of its own, ``run_on`` on a kept
one) -> finish.py (scoring and outputs); client.py speaks the agent's protocol, querylog.py
gathers its QueryLog, device_state.py records and restores the device's state."""
