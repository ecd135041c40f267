from .annotation_fingerprint_hook import AnnotationFingerprintHook, annotation_fingerprint
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .augmentation_schedule_hook import AugmentationScheduleHook
from .checkpoint_compatibility_hook import CheckpointCompatibilityHook
from .class_counts_hook import ClassCountsHook
from .feature_cache_hook import FeatureCacheHook
from .head_init_hook import HeadInitHook
from .parameter_count_hook import ParameterCountHook
from .skipped_images_hook import SkippedImagesHook
from .test_time_ensemble_hook import TestTimeEnsembleHook
from .training_accuracy_hook import TrainingAccuracyHook
from .work_dir_lock_hook import WorkDirLockHook

__all__ = [
    'AnnotationFingerprintHook', 'AtomicCheckpointHook', 'CheckpointCompatibilityHook', 'ClassCountsHook',
    'FeatureCacheHook', 'HeadInitHook', 'ParameterCountHook', 'SkippedImagesHook', 'TestTimeEnsembleHook',
    'TrainingAccuracyHook', 'WorkDirLockHook',
    'annotation_fingerprint',
    'AugmentationScheduleHook'
]
