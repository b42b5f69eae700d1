"""Self-contained HTML reports of recorded runs: ``edgeperf html-report``."""
