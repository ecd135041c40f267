from .checkpoint_safety import is_torch_file, register_checkpoint_safe_globals, weights_only_refusal
from .classnames import load_classnames

# MMEngine checkpoints must load under torch's weights-only default (tools/test.py, --resume, load_from).
register_checkpoint_safe_globals()

__all__ = ['is_torch_file', 'load_classnames', 'register_checkpoint_safe_globals', 'weights_only_refusal']
