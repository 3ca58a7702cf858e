"""Mixed precision, channels_last and torch.compile around a backbone, with fp32 logits out."""
import torch
from torch import nn


class PrecisionWrapper(nn.Module):
    """Runs `net` under autocast (`amp`: None, "bf16" or "fp16") with channels_last inputs if asked,
    and returns fp32 outputs, so buffer logits, masked cross-entropy and metrics stay fp32."""

    def __init__(self, net, device, amp=None, channels_last=False, compile_net=False):
        super().__init__()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net
        self.__dict__["run"] = torch.compile(net) if compile_net else net  # not a submodule: net owns the weights
        self.device_type = torch.device(device).type
        self.dtype = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.channels_last = channels_last

    def forward(self, x):
        return self._under_precision(self.run, x)

    def features(self, x):
        """The backbone's features before its classifier (eager, not compiled), fp32 out."""
        return self._under_precision(self.net.features, x)

    def _under_precision(self, function, x):
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype is None:  # no autocast region to enter (it costs as much as a small layer)
            return function(x).float()
        with torch.autocast(self.device_type, dtype=self.dtype):
            return function(x).float()
