"""How the command-line tools speak and end: a run's command line as every message writes it; Ctrl-C and SIGTERM
inside a tool's own handling (announced_interrupt) raise Stopped with the signal's exit status; Ctrl-C outside a
tool's own handling (e.g. during the torch import) is one line and exit 130, and a reader that closed the pipe
(`| head`) ends the tool quietly."""
import contextlib
import io
import os
import shlex
import signal
import stat
import sys

INTERRUPTED = 130
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


def command_line(argv):
    """The command that runs one run with flags `argv`, as every message writes it."""
    return "python main.py " + shlex.join(argv)


def run_command(main, prog, on_interrupt="nothing was written"):
    """main()'s exit status, with Ctrl-C and a closed stdout turned into one line and a status."""
    try:
        status = main()
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {on_interrupt}", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
        return BROKEN_PIPE


class ClosedReaderTolerant(io.TextIOBase):
    """A stdout whose reader may go away (`main.py ... | head`): from the first write that finds the pipe closed, the
    text goes to /dev/null and the program carries on, so a run still finishes and writes its results line."""

    def __init__(self, stream):
        self.stream, self.gone = stream, False

    def write(self, text):
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self.reader_left()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.reader_left()

    def reader_left(self):
        self.gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())  # the interpreter's own last flush must not fail either
        os.close(devnull)

    def isatty(self):
        return self.stream.isatty()

    def fileno(self):
        return self.stream.fileno()


def bars_allowed(stream=None):
    """Whether a progress bar may be drawn on `stream` (stderr): not when it is a pipe (`2>&1 | head`, a scheduler's
    log reader), where a bar is noise; a terminal or a file are fine."""
    stream = sys.stderr if stream is None else stream
    try:
        return not stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def count(number, noun):
    """'1 run', '3 runs'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM (what cluster schedulers send) inside announced_interrupt(); `status` is the exit status
    a shell reports for that signal (130, 143)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.status = 128 + signum


@contextlib.contextmanager
def announced_interrupt(message):
    """Ctrl-C or SIGTERM inside the block prints `message` at once, then raises Stopped (a KeyboardInterrupt).
    A signal the process was started ignoring stays ignored."""
    def interrupt(signum, frame):
        print(f"\n{message}", file=sys.stderr, flush=True)
        raise Stopped(signum)
    handled = [number for number in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(number) is not signal.SIG_IGN]
    previous = {number: signal.signal(number, interrupt) for number in handled}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
