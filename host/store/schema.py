"""The store's tables, written once for SQLite and PostgreSQL.

Every statement is SQL both accept, but for two words each spells its own way: the
auto-numbered key ({ID}: SQLite's ``INTEGER PRIMARY KEY AUTOINCREMENT``, PostgreSQL's
identity column) and the bytes type ({BLOB}: ``BLOB``, ``BYTEA``). Times are ISO-8601 UTC
text (``2026-12-02T03:30:14.123456Z``), which sorts as time does in both; JSON is text;
yes/no is an INTEGER 0/1. ``schema_version`` holds one row: the version the tables are at,
which db.py checks on open (a store newer than this edgeperf is refused, an older one is
migrated by MIGRATIONS[from_version], none yet).

    runs            one row a run: where, what, on what, how it scored (COLUMNS)
    run_latencies   the run's raw per-query latencies (ns), zlib-compressed little-endian
                    int64 (encoding "zlib-int64le"), keyed by the run's id: ``compare``
                    needs only the store, not the run directory (which may be gone)
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_REAL = "DOUBLE PRECISION"

# (column, SQL type, what). The order is the export's (CSV header, JSON keys).
COLUMNS: list[tuple[str, str, str]] = [
    ("id", "{ID}", "the run's number in this store"),
    ("recorded_at", "TEXT NOT NULL", "when it was recorded (UTC)"),
    ("created", "TEXT", "when the run started (result.json's created)"),
    ("run_key", "TEXT NOT NULL UNIQUE", "sha256 naming the run: recording it again "
                                        "updates its row"),
    ("run_dir", "TEXT NOT NULL", "the run's directory, absolute"),
    ("kind", "TEXT NOT NULL", "loadgen (a LoadGen scenario) or tiny (an MLPerf Tiny procedure)"),
    ("board", "TEXT", "board profile name"),
    ("link", "TEXT", "link type: local, ssh, serial, tiny"),
    ("hostname", "TEXT", "the device's hostname"),
    ("cpu_model", "TEXT", "the device's CPU"),
    ("cpu_count", "INTEGER", "its cores"),
    ("machine", "TEXT", "its architecture (x86_64, aarch64)"),
    ("os", "TEXT", "its OS (Python's platform string)"),
    ("python_version", "TEXT", "the agent's Python"),
    ("numpy_version", "TEXT", "the agent's numpy"),
    ("runtime", "TEXT", "the inference runtime (ai_edge_litert, tflite_runtime, synthetic)"),
    ("runtime_version", "TEXT", "its version"),
    ("agent_version", "TEXT", "the device agent's version"),
    ("model", "TEXT", "model name"),
    ("model_spec", "TEXT", "the model as given (--model)"),
    ("model_sha256", "TEXT", "sha256 of the model file (none for synthetic models)"),
    ("task", "TEXT", "task name (NAME or NAME:VARIANT), if the run was a task's"),
    ("scenario", "TEXT", "SingleStream, MultiStream, Server, Offline (tiny: none)"),
    ("mode", "TEXT", "LoadGen's mode (PerformanceOnly...) or Tiny's procedure"),
    ("result", "TEXT", "VALID or INVALID"),
    ("metric_name", "TEXT", "the scenario's metric"),
    ("metric_value", _REAL, "its value"),
    ("metric_unit", "TEXT", "its unit"),
    ("query_count", "BIGINT", "queries scored"),
    ("sample_count", "BIGINT", "samples scored"),
    ("p50_ns", "BIGINT", "50th percentile latency (MultiStream: of queries)"),
    ("p90_ns", "BIGINT", "90th percentile latency"),
    ("p99_ns", "BIGINT", "99th percentile latency"),
    ("qps", _REAL, "throughput: SingleStream QPS w/ overhead, Server completed, Offline "
                   "samples/s"),
    ("energy_j", _REAL, "energy of the measured window (with a meter)"),
    ("avg_watts", _REAL, "mean power of the window"),
    ("uj_per_inference", _REAL, "microjoules an inference"),
    ("power_valid", "INTEGER", "the power result is valid (1/0; none without a meter)"),
    ("throttled", "INTEGER", "the device throttled during the run (1/0)"),
    ("campaign_id", "TEXT", "the campaign the run belongs to, if any"),
    ("edgeperf_version", "TEXT", "edgeperf's version"),
    ("edgeperf_commit", "TEXT", "the git commit of the edgeperf source that recorded it"),
    ("command", "TEXT", "the command line, if result.json held it when the run was recorded"),
    ("invalid_reasons", "TEXT", "JSON list: why INVALID"),
    ("warnings", "TEXT", "JSON list: the run's warnings"),
    ("throttling", "TEXT", "JSON: throttled, throttled_reasons, throttling_observable"),
    ("settings_requested", "TEXT", "JSON: the TestSettings asked for"),
    ("settings_effective", "TEXT", "JSON: the TestSettings LoadGen's rules made of them"),
    ("summary", "TEXT", "JSON: the scored Summary (tiny: the procedure's figures)"),
    ("power", "TEXT", "JSON: the power record's figures (with a meter)"),
    ("device", "TEXT", "JSON: the device's hello (versions, clock, capabilities)"),
    ("telemetry", "TEXT", "JSON: telemetry before and after (temperatures, frequencies)"),
]
COLUMN_NAMES = [c[0] for c in COLUMNS]
JSON_COLUMNS = frozenset({"invalid_reasons", "warnings", "throttling", "settings_requested",
                          "settings_effective", "summary", "power", "device", "telemetry"})

LATENCY_ENCODING = "zlib-int64le"

DDL = [
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (\n    " + ",\n    ".join(
        f"{name} {sql}" for name, sql, _ in COLUMNS) + "\n)",
    "CREATE INDEX IF NOT EXISTS runs_recorded_at ON runs (recorded_at)",
    "CREATE INDEX IF NOT EXISTS runs_board_model ON runs (board, model, scenario)",
    "CREATE INDEX IF NOT EXISTS runs_campaign ON runs (campaign_id)",
    """CREATE TABLE IF NOT EXISTS run_latencies (
    run_id BIGINT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    what TEXT NOT NULL,
    count BIGINT NOT NULL,
    kept BIGINT NOT NULL,
    encoding TEXT NOT NULL,
    data {BLOB} NOT NULL
)""",
]
# what each spells its own way (everything else is the same text)
DIALECT_WORDS = {
    "sqlite": {"ID": "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB": "BLOB"},
    "postgresql": {"ID": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                   "BLOB": "BYTEA"},
}
# from_version -> statements taking the tables to from_version + 1
MIGRATIONS: dict[int, list[str]] = {}


def statements(dialect: str) -> list[str]:
    """The DDL as ``dialect`` ("sqlite", "postgresql") reads it."""
    words = DIALECT_WORDS[dialect]
    return [s.replace("{ID}", words["ID"]).replace("{BLOB}", words["BLOB"]) for s in DDL]
