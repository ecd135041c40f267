from .checkpoint_safety import is_torch_file, register_checkpoint_safe_globals, weights_only_refusal
from .classnames import load_classnames
from .log_filters import MessageFilter, drop_messages, messages_dropped
from .package_configs import get_installed_path, is_installed, register_config_package, register_model_index

# MMEngine checkpoints must load under torch's weights-only default (tools/test.py, --resume, load_from).
register_checkpoint_safe_globals()
# `_base_ = ['lift_mm::...']` / `['mmpretrain::...']` and mmpretrain's model names (`get_model('lift_demo')`).
register_config_package()
register_model_index()

__all__ = [
    'MessageFilter', 'drop_messages', 'get_installed_path', 'is_installed', 'is_torch_file', 'load_classnames',
    'messages_dropped', 'register_checkpoint_safe_globals', 'register_config_package', 'register_model_index',
    'weights_only_refusal'
]
