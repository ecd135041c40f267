from .minimalist_random_crop import SCHEDULES, MinimalistRandomCrop
from .multi_view_crop import MultiViewCrop, five_crop_boxes

__all__ = ['MinimalistRandomCrop', 'MultiViewCrop', 'SCHEDULES', 'five_crop_boxes']
