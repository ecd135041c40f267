from . import backbones, heads, losses, peft, utils  # noqa: F401

__all__ = ["backbones", "heads", "losses", "peft", "utils"]
from . import tta  # noqa: E402,F401

__all__ += ['tta']
from . import classifiers  # noqa: E402,F401

__all__ += ['classifiers']
