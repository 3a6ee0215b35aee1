"""Machinery every application shares: the Trainer and its callbacks, checkpoints, metrics
files and plots, seeding, optimizers and schedules by name, and command-line helpers."""
from .averaging import WeightAveraging
from .callbacks import EarlyStopping, MetricsWriter, ModelCheckpoint, ProgressBar, StepProfiler
from .checkpoint import BEST, LAST, CheckpointFileError, load_checkpoint, save_checkpoint
from .cli import CLIError, add_run_args, add_train_args, check_device, run_command
from .files import write_csv, write_json, write_text
from .seed import rng_state, seed_everything, set_rng_state
from .trainer import Callback, StopTraining, Task, Trainer, to_device

__all__ = ["Trainer", "Task", "Callback", "StopTraining", "to_device", "ProgressBar",
           "MetricsWriter", "ModelCheckpoint", "EarlyStopping", "StepProfiler",
           "WeightAveraging", "LAST", "BEST",
           "save_checkpoint", "load_checkpoint", "CheckpointFileError", "CLIError",
           "add_run_args", "add_train_args", "check_device", "run_command", "write_csv",
           "write_json", "write_text", "seed_everything", "rng_state", "set_rng_state"]
