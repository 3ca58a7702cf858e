"""Stopping a run cleanly: SIGINT and SIGTERM set a flag that the loop reads after each step."""
import signal


class Interrupted(Exception):
    """SIGINT or SIGTERM: a checkpoint was written at `path` (None: before the first step, nothing
    was trained); exit with `status`."""

    def __init__(self, status, path):
        super().__init__(path)
        self.status, self.path = status, path


class StopSignals:
    """SIGINT and SIGTERM only set a flag: the loop finishes its step, checkpoints and stops."""
    STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}

    def __init__(self):
        self.received = None  # also the state of one never entered (a sweep worker leaves signals alone)

    def __enter__(self):
        self.received = None
        self.previous = {s: signal.signal(s, self.handle) for s in self.STATUS}
        return self

    def handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
