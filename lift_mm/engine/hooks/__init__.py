from .class_counts_hook import ClassCountsHook
from .parameter_count_hook import ParameterCountHook

__all__ = ['ClassCountsHook', 'ParameterCountHook']
from .head_init_hook import HeadInitHook  # noqa: E402
from .test_time_ensemble_hook import TestTimeEnsembleHook  # noqa: E402

__all__ += ['HeadInitHook', 'TestTimeEnsembleHook']
from .annotation_fingerprint_hook import AnnotationFingerprintHook, annotation_fingerprint  # noqa: E402
from .atomic_checkpoint_hook import AtomicCheckpointHook  # noqa: E402
from .skipped_images_hook import SkippedImagesHook  # noqa: E402

__all__ += ['AnnotationFingerprintHook', 'AtomicCheckpointHook', 'SkippedImagesHook', 'annotation_fingerprint']
