"""How both services start: keep a long-running process's resident memory flat with glibc
malloc settings.

glibc gives every thread that allocates its own arena (up to 8 per core), and memory freed in
one arena is not reused by another; and once a large block (>= 128 KiB) is freed it raises the
threshold above which blocks get their own mapping, so later large buffers land in the heap,
where the holes they leave keep the heap at its high-water mark.

- Worker: allocates from the model thread, the partial lane and decode threads. Measured on the
  394 s cuttledoc-pt-tts-adam clip, two requests in a row: RSS 642 / 633 MB with the default
  arenas, 376 / 427 and 472 / 479 MB in two runs with MALLOC_ARENA_MAX=1.
- Gateway: per-session audio buffers of 0.5-2 MB, copied windows, VAD in a thread pool. 16
  sessions of 90 s held at their 30 s backlog limit by a slow stub worker: RSS after they ended
  +93 MB by default (malloc: 32 MB in use, 87 MB free inside the heap), +15 MB with one arena
  and the mmap threshold fixed at 256 KiB (the long-lived session buffers get mappings that
  are returned when freed). 128 KiB gave +13 MB but mapped every window's copies too: event
  loop lag p99 at 100 stub sessions 120 ms instead of ~90; 1 MiB gave +44 MB.

`mallopt` from Python comes too late (the interpreter and its imports already have threads and
a heap), so the process re-executes itself once with the variables set. Variables an operator
sets win.
"""

from __future__ import annotations

import os
import sys

WORKER_MALLOC = {"MALLOC_ARENA_MAX": "1"}
GATEWAY_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "262144"}


def reexec_with_malloc_settings(module: str, settings: dict[str, str]) -> None:
    """Replace this process with `python -m module <same args>` under `settings` (once: after
    the exec every variable is set, so this returns)."""
    missing = {k: v for k, v in settings.items() if k not in os.environ}
    if not missing or not sys.platform.startswith("linux"):
        return
    os.environ.update(missing)
    os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])
