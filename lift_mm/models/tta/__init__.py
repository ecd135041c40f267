from .average_logits_tta import AverageLogitsTTA

__all__ = ['AverageLogitsTTA']
