"""LoadGen conf files (``mlperf.conf``, ``user.conf``), read as LoadGen 6.0.17 reads them.

Conf files use LoadGen's format (``model.scenario.key = value``) and LoadGen's key names and
units, so an existing ``mlperf.conf``/``user.conf`` pair applies unchanged. What LoadGen 6.0.17
reads (checked against its ``FromConfig``): ``target_latency`` (ms) sets the SingleStream and
MultiStream *expected* latency and the Server latency bound; ``target_qps`` sets the Server
arrival rate and the Offline expected QPS; ``samples_per_query`` is read for MultiStream only.
TestSettings field names such as ``single_stream_expected_latency_ns`` or ``server_target_qps``
are *not* conf keys; LoadGen ignores them and so do we, with a warning naming the right key.
A line is read as LoadGen's parser reads it (words split at whitespace, '#' a comment only as
a word of its own, strtoull/strtod for the values); a line LoadGen refuses, or would drop or
misread without a word (``k=v`` in one word, a comment after a value, ``010`` read as octal
8, ``1e3`` read as 1 for an integer key, a Server bound of 7.5 ms read as 7), is refused
with its file:line, the line and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from edgeperf.settings.conf_numbers import loadgen_number, loadgen_u64, strtod, written
from edgeperf.settings.requested import SCENARIOS, U64, SettingsError, TestSettings


class ConfEntry(NamedTuple):
    model: str
    scenario: str
    key: str
    value: str


class ConfError(SettingsError):
    """A conf line edgeperf refuses; the message names file:line, the line and the fix."""


class ConfWarning(UserWarning):
    """A conf-file key that edgeperf (like LoadGen) ignores."""


# How LoadGen 6.0.17's "dirt simple config parser" (TestSettings::FromConfig) reads a file:
# lines split at '\n'; words split at C whitespace (isspace in the C locale); the first word
# is the key, the second must be '=' (else: error), every further word a value that
# strtoul(.., 0) or strtod must read whole (else: error), the last one kept; a word '#'
# before the value ends the line (a comment), after it it is one more value (so an error).
# A line with one word, or with none after '=', is silently ignored, and so is a key no
# lookup asks for. Values stay text until a lookup converts them: strtoull(text, 0) times
# the multiplier for an integer key, strtod(text) times it for a double.
_C_SPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")
_OCTAL_LOOKING = re.compile(r"[+-]?0[0-9]+")


class _Refusal(ValueError):
    """A conf value refused at lookup: (what is wrong, how to fix it)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem, fix)
        self.problem, self.fix = problem, fix


def _u64(text: str, multiplier: int = 1, unit: str = "") -> int:
    """An integer key, read as LoadGen reads it, refused where that is not what it says."""
    lg = loadgen_u64(text) * multiplier % U64
    says = written(text)
    finite = not isinstance(says, float) or math.isfinite(says)
    if not finite:
        raise _Refusal(f"LoadGen reads {text} as {lg} here", "write a whole number")
    if says < 0:
        raise _Refusal(f"a negative value: LoadGen reads {text} as {lg} (it wraps)",
                       "write a number >= 0")
    if says != int(says):
        whole = (" (the Server target_latency is read in whole milliseconds)"
                 if unit == "ms" else "")
        raise _Refusal(f"LoadGen reads {text} as {loadgen_u64(text)}{whole}",
                       f"write a whole number{' of ms' if unit else ''}")
    value = int(says) * multiplier
    if value >= U64:
        raise _Refusal(f"{text} does not fit in 64 bits (LoadGen reads {lg})",
                       "write a smaller number")
    if value != lg:
        if _OCTAL_LOOKING.fullmatch(text):
            raise _Refusal(f"LoadGen reads {text} as octal, {loadgen_u64(text)}",
                           f"write {int(says)} (or {loadgen_u64(text)}) without the leading 0")
        raise _Refusal(f"LoadGen reads {text} as {loadgen_u64(text)} (an integer key is "
                       "read up to its first character that is not a digit)",
                       f"write {int(says)}")
    return value


def _double(text: str) -> float:
    """strtod(text), as LoadGen reads a double key: the same double; refused if not usable."""
    v = strtod(text)
    if not (math.isfinite(v) and v >= 0.0):
        raise _Refusal(f"LoadGen reads {text}, but edgeperf needs a finite number >= 0",
                       "write a finite number >= 0")
    return v


def _min_one(text: str) -> int:
    v = _u64(text)
    if v < 1:
        raise _Refusal(f"{text}: edgeperf needs a value >= 1 (LoadGen takes 0)",
                       "write a number >= 1")
    return v


def _ms_to_ns(text: str) -> int:
    """SingleStream/MultiStream target_latency: a double number of ms (strtod * 1e6)."""
    ns = round(_double(text) * 1_000_000)
    if ns <= 0:
        raise _Refusal(f"a target_latency of {text} ms: edgeperf needs one > 0 ms",
                       "write the expected latency in ms, > 0 ms")
    return ns


def _whole_ms_to_ns(text: str) -> int:
    """Server target_latency: strtoull(text) * 1000 * 1000, so whole milliseconds."""
    ns = _u64(text, 1_000_000, "ms")
    if ns <= 0:
        raise _Refusal("a Server bound of 0 ms: edgeperf needs one > 0 ms (LoadGen's 0 is "
                       "for token-latency models, which edgeperf does not run)",
                       "write the latency bound in ms, > 0 ms")
    return ns


def _percent(text: str) -> float:
    v = _double(text)
    if not 0.0 < v < 100.0:
        raise _Refusal(f"target_latency_percentile {text}: a percentile in percent, strictly "
                       "between 0 and 100", "write e.g. 99 for p99, 99.9 for p99.9")
    return v * 0.01  # as LoadGen multiplies, so 99.9 gives the same double


def _mode(text: str) -> str:
    modes = {0: "SubmissionRun", 1: "AccuracyOnly", 2: "PerformanceOnly"}
    v = _u64(text)
    if v == 3:
        raise _Refusal("mode 3 is LoadGen's FindPeakPerformance, which edgeperf does not run",
                       "write 0 (SubmissionRun), 1 (AccuracyOnly) or 2 (PerformanceOnly)")
    if v not in modes:
        raise _Refusal(f"mode is 0 (SubmissionRun), 1 (AccuracyOnly) or 2 (PerformanceOnly); "
                       f"LoadGen ignores {text} (it logs an error and keeps its mode)",
                       "write 0, 1 or 2")
    return modes[v]


SS_MS_SERVER = ("SingleStream", "MultiStream", "Server")
# conf key -> (TestSettings field, converter, scenarios it is looked up for, None: all), as
# LoadGen's FromConfig looks them up (target_latency_percentile: not for Offline).
_CONF_KEYS: dict[str, tuple[str, Any, tuple[str, ...] | None]] = {
    "mode": ("mode", _mode, None),
    "min_duration": ("min_duration_ms", _u64, None),
    "max_duration": ("max_duration_ms", _u64, None),
    "min_query_count": ("min_query_count", _min_one, None),
    "max_query_count": ("max_query_count", _u64, None),
    "target_latency": ("target_latency_ns", _ms_to_ns, SS_MS_SERVER),
    "target_latency_percentile": ("target_latency_percentile", _percent, SS_MS_SERVER),
    "target_qps": ("target_qps", _double, ("Server", "Offline")),
    "samples_per_query": ("samples_per_query", _min_one, ("MultiStream",)),
    "performance_sample_count_override": ("performance_sample_count", _u64, None),
    "qsl_rng_seed": ("qsl_rng_seed", _u64, None),
    "sample_index_rng_seed": ("sample_index_rng_seed", _u64, None),
    "schedule_rng_seed": ("schedule_rng_seed", _u64, None),
    "warmup_queries": ("warmup_queries", _u64, None),  # edgeperf's own key
    # audit.config's keys (TEST01, TEST04)
    "accuracy_log_rng_seed": ("accuracy_log_rng_seed", _u64, None),
    "accuracy_log_sampling_target": ("accuracy_log_sampling_target", _u64, None),
    "performance_issue_same": ("performance_issue_same", lambda t: _u64(t) != 0, None),
    "performance_issue_same_index": ("performance_issue_same_index", _u64, None),
}
# Keys LoadGen reads that edgeperf does not act on: ignored silently, as mlperf.conf has them.
_LOADGEN_ONLY_KEYS = frozenset({
    "accuracy_log_probability", "print_timestamps", "performance_issue_unique",
    "accuracy_sample_count_override",
    "sample_concatenate_permutation", "max_async_queries", "coalesce_queries",
    "target_duration", "use_token_latencies", "ttft_latency", "tpot_latency",
    "infer_token_latencies", "token_latency_scaling_factor", "use_grouped_qsl",
    "test05", "test05_qsl_rng_seed", "test05_sample_index_rng_seed",
    "test05_schedule_rng_seed",
})
_NOT_CONF_KEYS = {
    "single_stream_expected_latency_ns": "target_latency (ms)",
    "multi_stream_expected_latency_ns": "target_latency (ms)",
    "server_target_latency_ns": "target_latency (ms)",
    "server_target_qps": "target_qps",
    "offline_expected_qps": "target_qps",
    "multi_stream_samples_per_query": "samples_per_query",
    "performance_sample_count": "performance_sample_count_override",
}


def _refuse(source: str, n: int, raw: str, problem: str, fix: str) -> ConfError:
    return ConfError(f"{source}:{n}: {raw.rstrip(chr(13))!r}: {problem}; {fix}")


class _LineVerdict(NamedTuple):
    key: str  # "" when the line is refused
    values: list[str]
    problem: str = ""
    fix: str = ""


def _refused(problem: str, fix: str) -> _LineVerdict:
    return _LineVerdict("", [], problem, fix)


def _parse_line(raw: str) -> _LineVerdict | None:
    """LoadGen's reading of one line: None (nothing to read), its key and values, or a
    refusal for a line LoadGen refuses or silently drops although it says something."""
    words = [w for w in _C_SPACE.split(raw) if w]
    key, values, state = "", [], 0  # state: 0 key, 1 '=', 2 values
    for word in words:
        if word == "#" and state != 2:
            break
        if state == 2:
            if not loadgen_number(word):
                return _refused(
                    f"LoadGen refuses the line: {word!r} is not a number",
                    "put the comment on a line of its own ('#' after a value is read as one "
                    "more value)" if "#" in word else
                    "write an integer (12, 0x1f) or a decimal number (2.5, 1e3), no unit")
            values.append(word)
            continue
        if state == 1 and word != "=":
            if key.startswith("#"):
                return _refused("LoadGen refuses the line: '#' starts a comment only as a "
                                "word of its own",
                                f"write {'# ' + raw.strip()[1:].lstrip()!r}")
            return _refused("LoadGen refuses the line: its second word must be '='",
                            "write 'model.scenario.key = value', with spaces around '='")
        if state == 0:
            key = word
        state += 1
    if state == 0 or key.startswith("#"):
        return None  # empty, a comment, or a key LoadGen stores under '#...' (commented out)
    if state == 1 and "=" in key:
        left, _, right = key.partition("=")
        return _refused("LoadGen ignores the line: it splits words at spaces, and this is one "
                        "word, a key without a value", f"write {f'{left} = {right}'!r}")
    if state == 1:
        return _refused("LoadGen ignores the line: a key with no '= value'",
                        "add ' = VALUE', or make the line a comment ('# ...')")
    if not values:
        return _refused("LoadGen ignores the line: no value after '='",
                        "give a value or delete the line")
    if len(values) > 1:
        return _refused(f"{len(values)} values: LoadGen reads only the last, {values[-1]}",
                        "keep one")
    parts = key.rsplit(".", 2)
    if len(parts) != 3 or not all(parts):
        return _refused(f"LoadGen ignores the line: {key!r} is not model.scenario.key",
                        "write e.g. '*.*.min_duration' ('*' for any model or scenario)")
    return _LineVerdict(key, values)


def _parse(text: str, source: str) -> list[tuple[ConfEntry, int]]:
    out: list[tuple[ConfEntry, int]] = []
    for n, raw in enumerate(text.split("\n"), 1):
        if "\ufeff" in raw:
            raise _refuse(source, n, raw, "LoadGen ignores the line: it holds a byte-order mark "
                          "(U+FEFF), which LoadGen reads as part of the key",
                          "save the file as UTF-8 without a BOM")
        if "\0" in raw:
            raise _refuse(source, n, raw, "a NUL byte (LoadGen ends a word there)",
                          "remove it")
        verdict = _parse_line(raw)
        if verdict is None:
            continue
        if not verdict.key:
            raise _refuse(source, n, raw, verdict.problem, verdict.fix)
        model, scenario, key = verdict.key.rsplit(".", 2)
        out.append((ConfEntry(model, scenario, key, verdict.values[0]), n))
    return out


def parse_conf(text: str, source: str = "<conf>") -> list[ConfEntry]:
    """Parse LoadGen conf text into (model, scenario, key, value) entries, values as text.
    Raises ConfError on a line LoadGen refuses or would silently drop or misread."""
    return [e for e, _ in _parse(text, source)]


def _read_conf(conf: str | os.PathLike[str], index: int) -> tuple[str, str]:
    """(text, source name). A Path is a file; a str holding '=' or a newline is conf text."""
    if isinstance(conf, str) and ("=" in conf or "\n" in conf):
        return conf, f"<conf #{index}>"
    path = Path(conf)
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape"), str(path)
    except OSError as e:
        raise ConfError(f"cannot read conf file {path}: {e.strerror}") from None


def apply_conf(settings: TestSettings, confs: list[str | os.PathLike[str]],
               model: str) -> TestSettings:
    """Apply conf files in order (later files win), looking keys up as LoadGen's FromConfig.

    Within one file a key is taken from the first of ``model.scenario``, ``*.scenario``,
    ``model.*``, ``*.*`` that has it; within one of those, the last line wins. A value is
    converted (and refused, naming its line, where LoadGen would misread it) only where a
    lookup finds it, as LoadGen converts it only then. One difference: LoadGen ignores the
    rng seeds in user.conf (they come from its built-in mlperf.conf only); edgeperf takes
    them from any file, as it has no built-in conf.
    """
    return apply_conf_fields(settings, confs, model)[0]


def apply_conf_fields(settings: TestSettings, confs: list[str | os.PathLike[str]],
                      model: str) -> tuple[TestSettings, set[str]]:
    """apply_conf, and the names of the fields the files set."""
    fields: set[str] = set()
    result = dataclasses.replace(settings)
    scen = settings.scenario
    for i, conf in enumerate(confs):
        text, source = _read_conf(conf, i)
        table: dict[tuple[str, str, str], tuple[str, int]] = {}
        for entry, line in _parse(text, source):
            _warn_unknown(entry, source, line)
            table[(entry.model, entry.scenario, entry.key)] = (entry.value, line)
        lines = text.split("\n")
        for key, (field, convert, scenarios) in _CONF_KEYS.items():
            if scenarios is not None and scen not in scenarios:
                continue
            if key == "target_latency" and scen == "Server":
                convert = _whole_ms_to_ns
            for m, s in ((model, scen), ("*", scen), (model, "*"), ("*", "*")):
                if (m, s, key) in table:
                    value, line = table[(m, s, key)]
                    try:
                        setattr(result, field, convert(value))
                    except _Refusal as e:
                        raise _refuse(source, line, lines[line - 1], e.problem, e.fix) from None
                    fields.add(field)
                    break
    return result, fields


def _warn_unknown(entry: ConfEntry, source: str, line: int) -> None:
    if entry.scenario != "*" and entry.scenario not in SCENARIOS:
        warnings.warn(f"{source}:{line}: scenario {entry.scenario!r} is not one of "
                      f"{', '.join(SCENARIOS)}; the line never applies (LoadGen ignores it "
                      f"too)", ConfWarning, stacklevel=3)
    key = entry.key
    if key in _CONF_KEYS or key in _LOADGEN_ONLY_KEYS:
        return
    hint = f"; the conf key is {_NOT_CONF_KEYS[key]}" if key in _NOT_CONF_KEYS else ""
    warnings.warn(f"{source}:{line}: unknown key {key!r} ignored (LoadGen ignores it too)"
                  f"{hint}", ConfWarning, stacklevel=3)
