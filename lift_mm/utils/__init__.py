from .checkpoint_safety import register_checkpoint_safe_globals
from .classnames import load_classnames
from .log_filters import MessageFilter, drop_messages, messages_dropped

# MMEngine checkpoints must load under torch's weights-only default (tools/test.py, --resume, load_from).
register_checkpoint_safe_globals()

__all__ = ['MessageFilter', 'drop_messages', 'load_classnames', 'messages_dropped', 'register_checkpoint_safe_globals']
