"""Non-finite training steps, noted on the device each step and read by the host only at the logging
interval and at epoch ends: a step never waits on a device-to-host read to decide what to do."""
import torch


class FiniteWatch:
    """note(ok, terms) after each step records whether it was finite and, for the first step of the window
    that was not, its loss terms; read() returns (non-finite steps, index in the window of the first, its
    terms) with one host read and opens a new window."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.names = []
        self.patterns = {}  # which names a step has -> that presence vector on the device, made once
        self.nan = torch.full((), float("nan"), device=self.device)
        self.open_window()

    def open_window(self):
        self.steps = 0
        self.bad = torch.zeros((), dtype=torch.long, device=self.device)
        self.first = torch.full((), -1, dtype=torch.long, device=self.device)
        self.values = torch.full((len(self.names),), float("nan"), device=self.device)
        self.present = torch.zeros(len(self.names), dtype=torch.bool, device=self.device)

    def note(self, ok, terms):
        for name in terms:
            if name not in self.names:
                self.names.append(name)
                self.values = torch.cat([self.values, self.nan[None]])
                self.present = torch.cat([self.present, self.present.new_zeros(1)])
        values = torch.stack([terms[n].detach().float().reshape(()) if n in terms else self.nan for n in self.names])
        pattern = (len(self.names), frozenset(terms))
        if pattern not in self.patterns:
            present = torch.tensor([n in terms for n in self.names])  # a blocking copy would wait for the device
            self.patterns[pattern] = present.to(self.device, non_blocking=self.device.type == "cuda")
        present = self.patterns[pattern]
        first_now = ~ok & (self.first < 0)
        self.first = torch.where(first_now, self.steps, self.first)
        self.values = torch.where(first_now, values, self.values)
        self.present = torch.where(first_now, present, self.present)
        self.bad += (~ok).long()
        self.steps += 1

    def read(self):
        bad, first = torch.stack([self.bad, self.first]).tolist()
        terms = {name: value for name, value, present in zip(self.names, self.values.tolist(), self.present.tolist())
                 if present}
        self.open_window()
        return bad, first, terms
