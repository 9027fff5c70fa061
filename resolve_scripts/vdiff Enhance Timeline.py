"""vdiff: enhance every video clip of the current timeline into a new timeline "<name> (vdiff)" (see docs/resolve.md). The work is in vdiff_resolve.py beside this file."""
import os
import sys

_VDIFF_DIR = None  # written by `vdiff install-resolve`, for Resolve builds that run scripts without __file__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else _VDIFF_DIR)
sys.modules.pop("vdiff_resolve", None)  # Resolve keeps its Python alive: always load the installed version
import vdiff_resolve  # noqa: E402

vdiff_resolve.main("enhance_timeline", globals())
