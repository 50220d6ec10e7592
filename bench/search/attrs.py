"""Trial user attributes: the one list of what the objective stores on a trial, and the
readers that the budget and the final phase use (so no other module spells a key)."""

from __future__ import annotations

WORKER = "worker"  # host:pid of the process that ran the trial
SAMPLER_SEED = "sampler_seed"
N_PARAMS = "n_params"
THROUGHPUT = "throughput"  # train images/s of the model alone (speed probe)
THROUGHPUT_WITH_AUGMENT = "throughput_with_augment"  # images/s with augmentation included
AUGMENT_INFO = "augment_info"  # the augmentation's info dict (DCGAN cache, training time)
EPOCHS = "epochs"  # planned epochs
TRAIN_FRACTION = "train_fraction"  # planned stratified train subsample
BATCH_CAP = "batch_cap"  # the batch size the memory limit allowed, when below the sampled one
EVAL_CAP = "eval_cap"  # the evaluation batch the memory limit allowed, when below the default
FIT_SECONDS = "fit_seconds"  # the whole trial, model build to last epoch
TRAIN_SECONDS = "train_seconds"  # fit() alone
EPOCH_SECONDS = "epoch_seconds"  # median epoch time
EPOCH_IMAGES = "epoch_images"  # image-equivalents of one of its epochs (train + val / 3)
EPOCHS_RUN = "epochs_run"
BEST_EPOCH = "best_epoch"
STOPPED = "stopped"  # completed | deadline | early_stop
FOLD_SCORES = "fold_scores"  # --cv: the held-out metric of each fold (the value is their mean)
FAIL_REASON = "fail_reason"  # why a trial failed or was pruned by an error
RETRY_OF = "retry_of"  # the number of the dead worker's trial this one repeats (once)


def final_fit_seconds(trial, sizes: tuple[int, int, int] | None = None) -> float | None:
    """Seconds one final fit of ``trial``'s configuration should take: its median epoch time
    x its planned epochs (first-epoch warm-up excluded), else its whole fit time; with the
    fit's split ``sizes`` (train, val, test), on the whole train split (a trial's subsample
    is the search's budget device: the final fit plans for all of it, budget.final_plan)
    plus predicting the test split at the same speed."""
    from bench.search.budget import VAL_COST, full_data_scale

    attrs = trial.user_attrs
    if EPOCH_SECONDS not in attrs or EPOCHS not in attrs:
        return attrs.get(TRAIN_SECONDS)
    if sizes is None:
        return float(attrs[EPOCH_SECONDS]) * int(attrs[EPOCHS])
    n_train, n_val, n_test = sizes
    epoch_s = epoch_seconds_for(trial, n_train=n_train, n_val=n_val)
    fraction = float(attrs.get(TRAIN_FRACTION, 1.0))
    epoch_images = fraction * n_train + VAL_COST * n_val
    predict_s = epoch_s * VAL_COST * n_test / max(epoch_images, 1.0)
    full_s = epoch_s * full_data_scale(fraction, n_train=n_train, n_val=n_val)
    return full_s * int(attrs[EPOCHS]) + predict_s


def epoch_seconds_for(trial, *, n_train: int, n_val: int) -> float | None:
    """The trial's median epoch time, for an epoch at its train fraction of a fit of
    ``n_train`` train and ``n_val`` val images (a ``--cv`` refit trains on the whole pool,
    the trial on one fold's train); as measured for a trial that did not store its epoch's
    images. None: no epoch measured."""
    from bench.search.budget import epoch_seconds

    attrs = trial.user_attrs
    if EPOCH_SECONDS not in attrs:
        return None
    epoch_s = float(attrs[EPOCH_SECONDS])
    if EPOCH_IMAGES not in attrs:
        return epoch_s
    fraction = float(attrs.get(TRAIN_FRACTION, 1.0))
    images = epoch_seconds(fraction, n_train=n_train, n_val=n_val, throughput=1.0)
    return epoch_s * images / max(float(attrs[EPOCH_IMAGES]), 1.0)


def trial_throughput(trial) -> float | None:
    """Images/s the trial measured, augmentation included where it had one."""
    attrs = trial.user_attrs
    return attrs.get(THROUGHPUT_WITH_AUGMENT) or attrs.get(THROUGHPUT)


def fail_reasons(trials) -> list[str]:
    """The distinct failure reasons of ``trials``, sorted."""
    return sorted({t.user_attrs.get(FAIL_REASON) for t in trials} - {None})
