"""Reading a large feed file in a second process, so intake has a core of its own.

Decoding a feed line and translating its wire payload costs about as much as
deciding and saving it (``scripts/bench.py``: ~70 µs of ~170 µs a line), and
both are pure Python, so a thread would not run them side by side. A child
process runs :func:`adapters.feed.envelopes.read_feed` (the same code, the same errors,
the same stub filling) and hands over, per chunk of lines, the observations
as their JSON-native records (one ``orjson`` document) and the raw lines;
the parent rebuilds the observation objects from the records
(``ledger.observations.from_record``), which costs a tenth of parsing them.

At most ``QUEUED_CHUNKS`` chunks wait for intake, so memory stays flat
whatever the file's size. If the child dies, the parent says so instead of stopping
silently short of the end of the file.
"""

from __future__ import annotations

import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

import orjson

from adapters.feed.envelopes import FeedError, read_feed
from ledger.observations import Observation, from_record, to_record

#: Files at least this large are read in a child process (a smaller file is read
#: faster in-process than a child process starts: ~0.2 s to import what it needs).
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
#: Lines per message from the child.
CHUNK_LINES = 500
#: Chunks parsed ahead of intake at most (~1 MB each).
QUEUED_CHUNKS = 8

Parsed = tuple[int, bytes, Observation | FeedError, dict[str, Any] | None]
_LENGTH = struct.Struct("<I")


class FeedReaderDied(RuntimeError):
    """The child process reading a feed stopped before the end of the file."""


def read_feed_in_child(path: Path, chunk_lines: int = CHUNK_LINES
                       ) -> Generator[Parsed, None, None]:
    """What ``read_feed`` yields, plus each observation's record, read by a child process.

    The child is a fresh interpreter (``python -m adapters.feed.reader_process``), not a
    ``multiprocessing`` spawn: that would re-import the caller's main script,
    which breaks any script that calls intake outside ``if __name__ == "__main__"``.
    It starts here (an ``OSError`` if it cannot), and stops when the returned
    generator ends or is closed; a generator never iterated leaves the child to
    stop at its first write to the abandoned pipe.
    """
    root = str(Path(__file__).resolve().parent.parent)  # where ``adapters`` is
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    child = subprocess.Popen(
        [sys.executable, "-m", "adapters.feed.reader_process", str(path), str(chunk_lines)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
    return _stream(child, path)


def _stream(child: subprocess.Popen[bytes], path: Path) -> Generator[Parsed, None, None]:
    assert child.stdout is not None
    pipe = child.stdout
    # A thread moves frames from the pipe into a queue as soon as they come, so
    # the child keeps parsing while intake works through a whole window of lines
    # (the pipe itself holds 64 KB: without this the child waited for intake to
    # ask for the next chunk, and intake then waited for the child).
    frames: queue.Queue[bytes | None] = queue.Queue(maxsize=2 * QUEUED_CHUNKS)
    stop = threading.Event()
    drain = threading.Thread(target=_drain, args=(pipe, frames, stop), daemon=True,
                             name=f"syncledger feed pipe {path.name}")
    drain.start()

    def receive() -> bytes:
        frame = frames.get()
        if frame is None:
            code = child.wait()
            raise FeedReaderDied(f"the process reading {path} stopped before the end of the "
                                 f"file (exit code {code})")
        return frame

    finished = False
    try:
        while True:
            message = orjson.loads(receive())
            if message is None:
                finished = True
                return
            if isinstance(message, dict):  # the child could not read the file
                raise OSError(message["error"])
            raws = receive().split(b"\n")
            for entry, raw in zip(message, raws, strict=True):
                if len(entry) == 2:
                    line_no, record = entry
                    yield line_no, raw, from_record(record), record
                else:
                    line_no, text, item_id, field = entry
                    yield line_no, raw, FeedError(text, item_id=item_id, field=field), None
    finally:
        if not finished:  # the consumer stopped early (or failed): do not leave the child
            child.kill()
        stop.set()
        drain.join()
        pipe.close()
        child.wait()


def _drain(pipe: IO[bytes], frames: queue.Queue[bytes | None], stop: threading.Event) -> None:
    """(Thread) frames from the pipe into the queue; ``None`` once the pipe ends."""
    while True:
        head = pipe.read(_LENGTH.size)
        frame: bytes | None = None
        if len(head) == _LENGTH.size:
            size = _LENGTH.unpack(head)[0]
            frame = pipe.read(size)
            if len(frame) < size:
                frame = None
        while True:
            try:
                frames.put(frame, timeout=0.1)
                break
            except queue.Full:
                if stop.is_set():
                    return
        if frame is None:
            return


def _send(out: IO[bytes], data: bytes) -> None:
    out.write(_LENGTH.pack(len(data)))
    out.write(data)


def child_main(path: str, chunk_lines: int, out: IO[bytes]) -> None:
    """(Child process) parse the file and send it in chunks; ``null`` ends, a dict fails."""
    try:
        entries: list[list[Any]] = []
        raws: list[bytes] = []
        for line_no, raw, parsed in read_feed(Path(path)):
            if isinstance(parsed, FeedError):
                entries.append([line_no, str(parsed), parsed.item_id, parsed.field])
            else:
                entries.append([line_no, to_record(parsed)])
            raws.append(raw)
            if len(entries) >= chunk_lines:
                _send(out, orjson.dumps(entries))
                _send(out, b"\n".join(raws))
                entries, raws = [], []
        if entries:
            _send(out, orjson.dumps(entries))
            _send(out, b"\n".join(raws))
        _send(out, b"null")
    except BrokenPipeError:  # the parent stopped reading
        return
    except OSError as exc:
        _send(out, orjson.dumps({"error": f"cannot read {path}: {exc}"}))
    out.flush()


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the parent stops and kills this
    # process; a traceback from here would only add noise to the terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child_main(sys.argv[1], int(sys.argv[2]), sys.stdout.buffer)
