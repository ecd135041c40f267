from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpretrain.registry import HOOKS
from ...models.utils import count_parameters, format_parameter_counts


@HOOKS.register_module()
class ParameterCountHook(Hook):
    """Logs total and trainable parameters, per light-module kind, when training starts."""

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        runner.logger.info('Parameters:\n' + format_parameter_counts(count_parameters(model)))
