"""What talks to Ray: the only part of tune/ that starts, feeds or reads Ray Tune.

`tuner` builds and runs the search's Tuner (the arm samplers through `searcher`, the scheduler, the
progress lines of `progress`) and reads its trials back as records; `confirmation` re-trains the
chosen configurations at fresh seeds as Ray trials; `trainable` is the function every trial runs
(the training code path of `train.py`, one report per epoch, a checkpoint Ray can restore);
`cluster` connects to or starts Ray and checks the storage and the resources a trial asks for;
`trial_names` maps Ray's trial names to Optuna's numbers. Ray and Optuna are imported when a search
runs, never when a command only parses its arguments.
"""
