"""Registries of scope ``lift_mm``.

lift_mm registers its components in mmpretrain's registries, so configs with ``default_scope='mmpretrain'`` use
them by ``type=`` name. MMEngine gives the dicts of a config inherited by package name
(``_base_ = ['lift_mm::lift/lift_demo.py']``) the scope ``lift_mm``; these children of mmpretrain's registries
resolve that scope to the same components (a child looks a name up in its parents).
"""
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry


def _child(parent: Registry) -> Registry:
    # Importing lift_mm registers all of its components (in mmpretrain's registries).
    return Registry(parent.name, parent=parent, scope='lift_mm', locations=['lift_mm'])


RUNNERS = _child(mmpretrain_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmpretrain_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmpretrain_registry.LOOPS)
HOOKS = _child(mmpretrain_registry.HOOKS)
LOG_PROCESSORS = _child(mmpretrain_registry.LOG_PROCESSORS)
OPTIMIZERS = _child(mmpretrain_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmpretrain_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmpretrain_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmpretrain_registry.PARAM_SCHEDULERS)
DATASETS = _child(mmpretrain_registry.DATASETS)
DATA_SAMPLERS = _child(mmpretrain_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmpretrain_registry.TRANSFORMS)
MODELS = _child(mmpretrain_registry.MODELS)
MODEL_WRAPPERS = _child(mmpretrain_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmpretrain_registry.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child(mmpretrain_registry.BATCH_AUGMENTS)
TASK_UTILS = _child(mmpretrain_registry.TASK_UTILS)
TOKENIZER = _child(mmpretrain_registry.TOKENIZER)
METRICS = _child(mmpretrain_registry.METRICS)
EVALUATORS = _child(mmpretrain_registry.EVALUATORS)
VISUALIZERS = _child(mmpretrain_registry.VISUALIZERS)
VISBACKENDS = _child(mmpretrain_registry.VISBACKENDS)
