"""MLPerf submissions from edgeperf runs: the rules as data (rules.py, rules/vX.Y.toml), the
tree MLCommons' checker reads (tree.py: ``edgeperf submission init|add``), and edgeperf's own
checker of it (check.py: ``edgeperf submission check``)."""
