"""Non-finite training steps, noted on the device each step and read by the host only at the logging
interval and at epoch ends: a step never waits on a device-to-host read to decide what to do."""
import torch


class FiniteWatch:
    """note(ok, names, values) after each step writes whether it was finite and its loss terms into the next row
    of the window (two writes on the device); read() returns (non-finite steps, index in the window of the first,
    its terms) with one host read (two when a step was not finite) and opens a new window."""

    def __init__(self, device, rows=32):
        self.device = torch.device(device)
        self.names, self.position, self.columns = [], {}, {}
        self.ok = torch.ones(rows, dtype=torch.bool, device=self.device)
        self.values = torch.full((rows, 0), float("nan"), device=self.device)
        self.patterns = []  # the names of each step of the window

    def note(self, ok, names, values):
        for name in names:
            if name not in self.position:
                self.position[name] = len(self.names)
                self.names.append(name)
                self.values = torch.cat([self.values, self.values.new_full((len(self.values), 1), float("nan"))], 1)
        step = len(self.patterns)
        if step == len(self.ok):  # a window longer than the rows so far (steps with no read between): twice as many
            self.ok = torch.cat([self.ok, torch.ones_like(self.ok)])
            self.values = torch.cat([self.values, torch.full_like(self.values, float("nan"))])
        if names not in self.columns:  # a blocking copy of a new index would wait for the device
            self.columns[names] = torch.tensor([self.position[n] for n in names]).to(self.device, non_blocking=True)
        self.ok[step] = ok
        self.values[step].index_copy_(0, self.columns[names], values)
        self.patterns.append(names)

    def read(self):
        steps, self.patterns = self.patterns, []
        oks = self.ok[:len(steps)].tolist()
        bad = oks.count(False)
        if not bad:
            return 0, -1, {}
        first = oks.index(False)
        row = self.values[first].tolist()
        return bad, first, {name: row[self.position[name]] for name in self.names if name in steps[first]}
