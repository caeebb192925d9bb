"""sweeps: hyperparameter and learning-rate-schedule sweeps for PyTorch that follow the practices
of ../shared/PRACTICES.md, driven by Optuna over Hydra configs."""

from sweeps._errors import ConfigError
from sweeps._experiment import Dataset, Experiment, prepare
from sweeps._export import export_study
from sweeps._space import SearchSpace, compile_space

__version__ = "0.1.0"
__all__ = ["ConfigError", "Dataset", "Experiment", "SearchSpace", "compile_space", "export_study", "prepare"]
