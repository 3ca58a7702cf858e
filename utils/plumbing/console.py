"""How the command-line tools speak and end: a run's command line as every message writes it; Ctrl-C outside a
tool's own handling (e.g. during the torch import) is one line and exit 130, and a reader that closed the pipe
(`| head`) ends the tool quietly."""
import contextlib
import os
import shlex
import signal
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


def count(number, noun):
    """'1 run', '3 runs'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


@contextlib.contextmanager
def announced_interrupt(message):
    """Ctrl-C inside the block prints `message` at once, then raises KeyboardInterrupt as usual."""
    def interrupt(signum, frame):
        print(f"\n{message}", file=sys.stderr, flush=True)
        raise KeyboardInterrupt
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started with Ctrl-C ignored: keep it so
        yield
        return
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
