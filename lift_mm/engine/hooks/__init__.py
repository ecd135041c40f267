from .class_counts_hook import ClassCountsHook
from .parameter_count_hook import ParameterCountHook

__all__ = ['ClassCountsHook', 'ParameterCountHook']
