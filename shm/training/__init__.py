"""The three training stages of SHM: engine, callbacks, checkpoints, strategies and the shared CLI.

    from shm.training import TrainOptions, train_tnet
    train_tnet(TrainOptions(data_dir="DATA", out_dir="runs/tnet", epochs=10))

`options` (`TrainOptions`, the one options object of a run), `stages`, `engine` (the trainer and
`fit_stage`), `callbacks`, `checkpoints`, `distribute` and `cli` (the flags) are the modules;
docs/training.md describes a run.
"""

from shm.console import quiet_tensorflow

quiet_tensorflow()  # first: TensorFlow's start-up lines stay off the console of every training tool

from shm.training.callbacks import TrainingDiverged, cosine_learning_rate  # noqa: E402
from shm.training.checkpoints import CheckpointError  # noqa: E402
from shm.training.distribute import STRATEGIES, is_chief, make_strategy, set_mixed_precision  # noqa: E402
from shm.training.engine import STAGES, StageTrainer, fit_stage  # noqa: E402
from shm.training.options import TrainOptions  # noqa: E402
from shm.training.stages import predict_trimaps, train_mnet, train_shm, train_tnet  # noqa: E402

__all__ = [
    "STAGES", "STRATEGIES", "CheckpointError", "StageTrainer", "TrainOptions", "TrainingDiverged",
    "cosine_learning_rate", "fit_stage", "is_chief", "make_strategy", "predict_trimaps",
    "set_mixed_precision", "train_mnet", "train_shm", "train_tnet",
]
