from .compact_state_dict import FINGERPRINT_KEY, fingerprint, fingerprint_hex, make_state_dict_compact
from .freeze import freeze
from .frozen_foundation import FrozenFoundationMixin
from .open_clip_factory import SharedCLIP, build_open_clip, build_tokenizer, resolve_quick_gelu, save_clip_weights
from .parameter_count import count_parameters, format_parameter_counts

__all__ = [
    'FINGERPRINT_KEY', 'FrozenFoundationMixin', 'SharedCLIP', 'build_open_clip',
    'build_tokenizer', 'count_parameters', 'fingerprint', 'fingerprint_hex',
    'format_parameter_counts', 'freeze', 'make_state_dict_compact', 'resolve_quick_gelu', 'save_clip_weights'
]
