#!/usr/bin/env python3
"""A real Optuna study, run as a Swarm job.

What makes it safe to kill, hang or restart at any moment:
- every trial is stored in an SQLite storage inside SWARM_CHECKPOINT_DIR, the
  same folder on every attempt, so a restarted study loads what it had;
- a trial cut short by a kill stays RUNNING in the storage: it is marked
  FAIL at start, so it is run again and never counted as done;
- after every trial an Optuna callback writes SWARM_PROGRESS_FILE
  (updatedAt, iteration, metric) and best.json, each atomically, so Swarm
  sees progress and a reader never sees half a file.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone

import optuna
from optuna.trial import TrialState


def atomic_write(path, value):
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30, help="completed trials to reach")
    parser.add_argument("--trial-seconds", type=float, default=0.5)
    parser.add_argument("--study", default=os.environ.get("SWARM_TASK_ID") or "demo-study")
    args = parser.parse_args()

    ckpt = os.environ.get("SWARM_CHECKPOINT_DIR", os.path.abspath("checkpoint"))
    os.makedirs(ckpt, exist_ok=True)
    progress_file = os.environ.get("SWARM_PROGRESS_FILE", os.path.join(ckpt, "progress.json"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=args.study, storage=f"sqlite:///{os.path.join(ckpt, 'study.db')}", load_if_exists=True, direction="minimize"
    )
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # Left RUNNING by a killed attempt: not done, so run it again.
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)

    def completed():
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def report(study_, trial):
        done = completed()
        best = study_.best_trial if done else None
        now = datetime.now(timezone.utc).isoformat()
        atomic_write(progress_file, {"updatedAt": now, "iteration": done, "metric": best.value if best else None})
        if best:
            atomic_write(os.path.join(ckpt, "best.json"), {"updatedAt": now, "trial": best.number, "value": best.value, "params": best.params})
        print(f"trial {trial.number} {trial.state.name} value={trial.value} completed={done}", flush=True)

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        y = trial.suggest_float("y", -10, 10)
        time.sleep(args.trial_seconds)
        return (x - 2) ** 2 + (y + 1) ** 2

    done = completed()
    print(f"optuna study ready: {args.study}, {done} of {args.trials} trials done (attempt {os.environ.get('SWARM_ATTEMPT', '1')})", flush=True)
    remaining = args.trials - done
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, callbacks=[report])
    print(f"study {args.study} done: {completed()} trials, best {study.best_value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
