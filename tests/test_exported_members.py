"""The public surface of ``import edgeperf``, pinned (as httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import types

import edgeperf

# every public name, nothing private: a change here is a change of the public API
PUBLIC = ("MODES PRESETS SCENARIOS AccuracyResult AgentDied AgentError AgentTimeout BoardProfile "
          "Device EdgeperfError LinkError MeterError RunError RunResult Summary TaskError "
          "TestSettings TinyResult UsageError __version__ campaign connect preset read_querylog "
          "score").split()


def test_all_is_exactly_the_public_surface() -> None:
    assert edgeperf.__all__ == PUBLIC


def test_every_exported_name_exists_and_nothing_private_is_exported() -> None:
    for name in edgeperf.__all__:
        assert hasattr(edgeperf, name), name
        assert not name.startswith("_") or name == "__version__", name
        assert not isinstance(getattr(edgeperf, name), types.ModuleType), name


def test_public_names_are_defined_in_edgeperf_not_in_the_agent() -> None:
    """Re-exported names come from the host package (the version from the agent, whose
    zipapp carries the same number)."""
    for name in edgeperf.__all__:
        member = getattr(edgeperf, name)
        module = getattr(member, "__module__", None)
        if module is not None and name != "__version__":
            assert module.startswith("edgeperf.") or module == "edgeperf", (name, module)


def test_errors_form_one_tree() -> None:
    errors = [edgeperf.UsageError, edgeperf.LinkError, edgeperf.RunError, edgeperf.AgentError,
              edgeperf.AgentDied, edgeperf.AgentTimeout, edgeperf.MeterError, edgeperf.TaskError]
    for cls in errors:
        assert issubclass(cls, edgeperf.EdgeperfError), cls
        assert not issubclass(cls, SystemExit)
    assert issubclass(edgeperf.AgentDied, edgeperf.AgentError)
    assert issubclass(edgeperf.UsageError, ValueError)  # what a bad argument has always been


def test_each_modules_error_is_a_public_kind() -> None:
    from edgeperf.boards.profile import BoardError
    from edgeperf.links.base import LinkClosed
    from edgeperf.links.base import LinkError as BaseLinkError
    from edgeperf.power.meter import MeterError
    from edgeperf.run.client import AgentDied, AgentError
    from edgeperf.run.execute import RunError
    from edgeperf.scoring.files import ScoreFileError
    from edgeperf.settings import ConfError, SettingsError
    from edgeperf.tasks.audit import AuditError
    from edgeperf.tasks.datasets import DatasetError
    from edgeperf.tasks.registry import TaskError
    from edgeperf.tasks.training import TrainingError

    kinds = {BoardError: edgeperf.UsageError, SettingsError: edgeperf.UsageError,
             ConfError: edgeperf.UsageError, ScoreFileError: edgeperf.UsageError,
             BaseLinkError: edgeperf.LinkError, LinkClosed: edgeperf.LinkError,
             MeterError: edgeperf.MeterError, TaskError: edgeperf.TaskError,
             DatasetError: edgeperf.TaskError, TrainingError: edgeperf.TaskError,
             AuditError: edgeperf.TaskError}
    for cls, kind in kinds.items():
        assert issubclass(cls, kind), (cls, kind)
    assert AgentError is edgeperf.AgentError and AgentDied is edgeperf.AgentDied
    assert RunError is edgeperf.RunError


def test_an_unknown_or_malformed_task_is_a_usage_error() -> None:
    """Nothing was run: the CLI exits 2 for it, as for an unknown board."""
    from edgeperf.tasks.registry import TaskError

    assert issubclass(TaskError, edgeperf.UsageError) and issubclass(TaskError, edgeperf.TaskError)
