from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...models.utils import count_parameters, format_parameter_counts
from .utils import unwrap_model


@HOOKS.register_module()
class ParameterCountHook(Hook):
    """Logs total and trainable parameters, per light-module kind, when training starts."""

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        runner.logger.info('Parameters:\n' + format_parameter_counts(count_parameters(model)))
