"""Run the training CLI while recording every file it writes under a folder, per process:

    accelerate launch ... -m tests.core.audit_writes LOG_DIR WATCHED_DIR -- CLI OPTIONS...

Python's audit hooks see each file opened for writing, each folder made, each rename and each
removal, whoever does it (our code, peft, torch), so the test can tell which of the processes
of a run wrote the adapter and the checkpoints without trusting the trainer's own word. Each
process leaves LOG_DIR/rank<RANK>.json: a list of [event, path] under WATCHED_DIR.
"""

from __future__ import annotations

import json
import os
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.mkdir": 0, "os.remove": 0, "os.rmdir": 0, "shutil.rmtree": 0,
               "os.rename": 1}  # the argument that names the path written (rename: the target)


def _path(value: object) -> str | None:
    if isinstance(value, (str, bytes, os.PathLike)):
        return os.path.realpath(os.fsdecode(value))
    return None


def main() -> None:
    log_dir, watched = sys.argv[1], os.path.realpath(sys.argv[2])
    cli_args = sys.argv[sys.argv.index("--") + 1:]
    seen: list[tuple[str, str]] = []
    recording = True

    def hook(event: str, args: tuple) -> None:
        if not recording:
            return
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else \
                bool(flags & WRITE_FLAGS)
        elif event in PATH_EVENTS:
            path, writes = args[PATH_EVENTS[event]], True
        else:
            return
        path = _path(path)
        if writes and path is not None and path.startswith(watched + os.sep):
            seen.append((event, path))

    sys.addaudithook(hook)
    from alignment_core.training.cli import main as cli_main

    try:
        cli_main(cli_args)
    finally:
        recording = False
        with open(os.path.join(log_dir, f"rank{os.environ.get('RANK', '0')}.json"), "w") as out:
            json.dump(seen, out)


if __name__ == "__main__":
    main()
