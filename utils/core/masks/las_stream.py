from utils.core.masks import register_mask
from utils.core.masks.las import LogitAdjustedMask


@register_mask("las_stream")
class StreamLogitAdjustedMask(LogitAdjustedMask):
    """LAS on the stream rows alone: the logit-adjusted softmax of `las` (Huang et al., TMLR 2024), its prior
    counted from every row trained on, but the replay rows' cross-entropy left plain. A form of the suite's making
    (the authors adjust the replay rows too: `las`), kept because the studies before 2026-12-04 ran `las` so: their
    lines read `mask las` with `mask_buffer` false."""
    REPLAY = "never"
