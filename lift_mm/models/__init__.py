from . import backbones, heads, losses, peft, utils  # noqa: F401

__all__ = ["backbones", "heads", "losses", "peft", "utils"]
