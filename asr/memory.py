"""Keep the worker's resident memory flat.

glibc gives every thread that allocates its own malloc arena, and memory freed in one arena is
not reused by another. The worker allocates from the model thread, the partial lane and the
decode threads, so after a long file each arena keeps its own peak. Measured on the 394 s
cuttledoc-pt-tts-adam clip, two requests in a row: RSS 642 / 633 MB with glibc's default
arenas, 376 / 427 and 472 / 479 MB in two runs with MALLOC_ARENA_MAX=1 (`mallopt` from
Python came too late: 457 / 543 MB, the interpreter and its imports already had threads).
So the worker re-executes itself once with the variable set; an operator's own
MALLOC_ARENA_MAX wins.
"""

from __future__ import annotations

import os
import sys

ARENAS = "1"


def reexec_with_one_malloc_arena(module: str) -> None:
    """Replace this process with `python -m module <same args>` under MALLOC_ARENA_MAX (once)."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    os.environ["MALLOC_ARENA_MAX"] = ARENAS
    os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])
