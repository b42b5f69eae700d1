"""``edgeperf boards``, ``models``, ``tasks``: what there is to run on and with."""

from __future__ import annotations

import argparse

from edgeperf.cli.common import EXIT_VALID, formatter


def add_parsers(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("boards", help="list board profiles", formatter_class=formatter,
                       description="The board profiles: boards/*.toml shipped with edgeperf.")
    b.set_defaults(fn=cmd_boards)
    m = sub.add_parser("models", help="list built-in models with their inputs and outputs",
                       formatter_class=formatter,
                       description="Models --model takes besides a .tflite path.")
    m.set_defaults(fn=cmd_models)
    t = sub.add_parser("tasks", help="list tasks (built-in and ./tasks/*.toml)",
                       formatter_class=formatter,
                       description="Tasks --task takes: a model, a dataset and a quality target.")
    t.set_defaults(fn=cmd_tasks)


def cmd_boards(args: argparse.Namespace) -> int:
    from edgeperf.boards.profile import BoardError, list_boards, load_board

    for name, path in list_boards().items():
        try:
            b = load_board(str(path))
            print(f"{name:20s} {b.link_type:8s} {b.description}")
        except BoardError as exc:
            print(f"{name:20s} INVALID  {exc}")
    return EXIT_VALID


def _tensor(shape: tuple[int, ...], dtype: str) -> str:
    return f"{dtype}[{','.join(str(d) for d in shape)}]"


def cmd_models(args: argparse.Namespace) -> int:
    from edgeperf.models.builtin import builtin_info, list_builtin

    rows = []
    for name in list_builtin():
        info = builtin_info(name)
        rows.append((f"builtin:{name}", _tensor(info.input_shape, info.input_dtype),
                     _tensor(info.output_shape, info.output_dtype), info.description))
    rows.append(("synthetic:null", "-", "-", "no work: the loop's own overhead"))
    rows.append(("synthetic:busy:<us>", "-", "-", "a busy-wait of <us> microseconds, for "
                 "calibration"))
    rows.append(("synthetic:sleep:<us>", "-", "-", "a sleep of <us> microseconds (the core "
                 "stays free: many emulated boards on one host)"))
    print(f"{'model':22s} {'input':16s} {'output':16s} what")
    for model, inp, out, what in rows:
        print(f"{model:22s} {inp:16s} {out:16s} {what}")
    print("\nand any .tflite file: --model PATH (inputs generated from its tensors; "
          "--input-shape for dynamic dimensions)")
    return EXIT_VALID


def cmd_tasks(args: argparse.Namespace) -> int:
    """The built-in tasks and those in ./tasks/*.toml."""
    from edgeperf.tasks.registry import list_tasks

    for d in list_tasks():
        variants = "/".join(v for v in d.variants if v) or "-"
        print(f"{d.name:16s} {variants:10s} {d.metric:5s} {d.target_text}")
        print(f"{'':16s} {d.description}" + ("" if d.source == "built-in" else
                                               f" [{d.source}]"))
    return EXIT_VALID
