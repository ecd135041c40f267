from . import hooks  # noqa: F401
from .runner_setup import setup_distributed_without_cuda

__all__ = ['hooks', 'setup_distributed_without_cuda']
