"""The MLflow run layout of a sweep: every tag, param prefix and artifact path, named once.

Writers (this package) and readers (`rkdo-tune report`) import these names
instead of spelling the strings. Importing this module does not import MLflow.

    experiment (space name or --experiment)
      sweep run    rkdo.role=sweep   one per sweep, run name = sweep name
        trial run  rkdo.role=trial   one per Ray trial (= one configuration), name = trial id
          seed run rkdo.role=seed    one per repeat seed, name = <trial id>-seed<seed>
"""

from __future__ import annotations

# Where the default local store lives (in the driver's working directory).
DEFAULT_DB_NAME = "mlflow.db"

# --- tags -------------------------------------------------------------------------------
TAG_PARENT = "mlflow.parentRunId"
TAG_ROLE = "rkdo.role"
ROLE_SWEEP = "sweep"
ROLE_TRIAL = "trial"
ROLE_SEED = "seed"

TAG_SWEEP_NAME = "rkdo.sweep_name"
TAG_SPACE_NAME = "rkdo.space_name"
TAG_METRIC = "rkdo.metric"
TAG_MODE = "rkdo.mode"
TAG_VERSION = "rkdo.version"
TAG_PROTOCOL_VERSION = "rkdo.protocol_version"  # sweep, trial and seed runs: see protocols.py
TAG_GIT_SHA = "rkdo.git_sha"
TAG_BEST_TRIAL_ID = "rkdo.best_trial_id"
TAG_BEST_TRIAL_RUN_ID = "rkdo.best_trial_run_id"
TAG_ARM = "rkdo.arm"  # trial runs: verdict.ARMS (search | baseline)
TAG_STAGE = "rkdo.stage"  # trial runs: verdict.STAGES (search | confirmation)
TAG_BASELINE_TRIAL_ID = "rkdo.baseline_trial_id"  # sweep run
TAG_CONFIRMED_TRIAL_IDS = "rkdo.confirmed_trial_ids"  # sweep run: the search trials re-run
TAG_CONFIRMS = "rkdo.confirms_trial_id"  # confirmation trial runs: the search trial re-run
TAG_VERDICT = "rkdo.verdict"  # sweep run: the one-line verdict
TAG_TIED_WITH_BEST = "rkdo.tied_with_best"  # search trial runs: "true" | "false"

TAG_STATUS = "rkdo.status"  # completed | early_stopped | diverged | failed | stopped | running
TAG_REASON = "rkdo.reason"
TAG_SEEDS = "rkdo.seeds"  # comma list, on trial runs
TAG_CONTINUES = "rkdo.continues_run_id"  # on a restarted trial's (or seed's) new run
TAG_SUPERSEDED_BY = "rkdo.superseded_by"  # on the old run a restarted trial replaced

TAG_TRIAL_ID = "trial_id"
TAG_NODE_ID = "node_id"
TAG_SEED = "seed"
TAG_OVERSPECIALIZED = "overspecialized"  # "true" | "false"
TAG_EARLY_STOP_STEP = "early_stop_step"  # an integer, or "none"

STATUS_RUNNING = "running"
STATUS_FAILED = "failed"
STATUS_STOPPED = "stopped"

# --- params and metrics -------------------------------------------------------------------
CONFIG_PARAM_PREFIX = "config."  # trial runs: the first seed's TrialConfig minus `seed`
BASE_PARAM_PREFIX = "base."  # sweep run: the space's base TrialConfig values
SPEC_PARAM_PREFIX = "parameters."  # sweep run: each searched parameter's spec, as JSON
PARAM_SEEDS = "repeats.seeds"  # sweep run: the repeat seeds, comma list
VERDICT_METRIC_PREFIX = "verdict/"  # sweep run: verdict/<metric>/{delta,ci_lo,ci_hi,p,p_holm}
BEST_METRIC_PREFIX = "best/"  # sweep run: the best trial's eval/* and diag/* means
METRIC_FAILED = "diag/failed"  # trial runs: 1 when the trial raised, else 0
STD_SUFFIX = "_std"  # trial runs: std over seeds next to each mean

# --- artifacts ----------------------------------------------------------------------------
ARTIFACT_SPACE_DIR = "space"  # sweep run: space.yaml (resolved) and the original file
ARTIFACT_RESOLVED_SPACE = "space/space.yaml"
ARTIFACT_LEADERBOARD = "sweep/leaderboard.json"
ARTIFACT_LOSS_CURVE = "plots/loss_curve.png"  # seed runs
ARTIFACT_HISTORY = "metrics/history.json"  # seed runs
ARTIFACT_REPORT_DIR = "report"  # sweep run: the folder `rkdo-tune report` wrote
