from .compact_state_dict import FINGERPRINT_KEY, CompactStateDict, fingerprint, fingerprint_hex
from .freeze import freeze
from .frozen_foundation import FrozenFoundationMixin
from .open_clip_factory import SharedCLIP, build_open_clip, build_tokenizer, resolve_quick_gelu, save_clip_weights
from .parameter_count import count_parameters, format_parameter_counts

__all__ = [
    'FINGERPRINT_KEY', 'CompactStateDict', 'FrozenFoundationMixin', 'SharedCLIP', 'build_open_clip',
    'build_tokenizer', 'count_parameters', 'fingerprint', 'fingerprint_hex',
    'format_parameter_counts', 'freeze', 'resolve_quick_gelu', 'save_clip_weights'
]
