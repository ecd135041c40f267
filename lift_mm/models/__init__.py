from . import backbones, classifiers, heads, losses, peft, tta, utils  # noqa: F401

__all__ = ['backbones', 'classifiers', 'heads', 'losses', 'peft', 'tta', 'utils']
