from .checkpoint_safety import register_checkpoint_safe_globals
from .classnames import load_classnames

# MMEngine checkpoints must load under torch's weights-only default (tools/test.py, --resume, load_from).
register_checkpoint_safe_globals()

__all__ = ['load_classnames', 'register_checkpoint_safe_globals']
