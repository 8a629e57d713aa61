"""The MLflow run layout of a sweep: every tag, param prefix and artifact path, named once.

Writers (this package) and readers (`rkdo-tune report`) import these names
instead of spelling the strings. Importing this module does not import MLflow.

    experiment (space name or --experiment)     mlflow.experimentKind=custom_model_development
      sweep run    rkdo.role=sweep   one per sweep, run name = sweep name
        trial run  rkdo.role=trial   one per Ray trial (= one configuration), `α=0.304 · 5002684b`
          seed run rkdo.role=seed    one per repeat seed, `s42 · α=0.304` (see `naming`)

Layout 2 (tag `rkdo.layout` on the sweep run) keeps one key per thing: the fixed
settings are params of the sweep run only; trial and seed runs carry the searched
values under their plain names (and `log10_<name>` for a log-scaled one); a trial
run's seed-means are `mean/<metric>`, `std/<metric>`, `ci95/<metric>`, never the
seeds' own metric names. Layout 1 (no tag) put every TrialConfig field on each
seed run, `config.<field>` on trial runs and seed-means under the seeds' names.
"""

from __future__ import annotations

# Where the default local store lives (in the driver's working directory).
DEFAULT_DB_NAME = "mlflow.db"

# The run layout written here; a sweep without TAG_LAYOUT was written in layout 1.
LAYOUT_VERSION = 2
LEGACY_LAYOUT = 1

# --- the experiment -----------------------------------------------------------------------
# MLflow 3 UI's kind of an experiment: model training, not GenAI (set when it is created).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND_TRAINING = "custom_model_development"

# --- tags -------------------------------------------------------------------------------
TAG_PARENT = "mlflow.parentRunId"
TAG_ROLE = "rkdo.role"
ROLE_SWEEP = "sweep"
ROLE_TRIAL = "trial"
ROLE_SEED = "seed"
ROLE_AUDIT = "audit"  # `rkdo-tune audit`: the parent of one sweep run per study
TAG_AUDIT_NAME = "rkdo.audit_name"  # audit run, and each of its sweep runs
TAG_AUDIT_STUDY = "rkdo.audit_study"  # a sweep run of an audit: which study it is
ARTIFACT_AUDIT_DIR = "audit"  # audit run: audit.md, its CSVs and plots

TAG_SWEEP_NAME = "rkdo.sweep_name"
TAG_SPACE_NAME = "rkdo.space_name"
TAG_METRIC = "rkdo.metric"
TAG_MODE = "rkdo.mode"
# Sweep run: JSON [[name, mode], ...] of every objective, primary first (a multi-objective
# search lists several; sweeps older than this tag read as their metric and mode alone).
TAG_OBJECTIVES = "rkdo.objectives"
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
TAG_DEFAULTS_VERDICT = "rkdo.defaults_verdict"  # sweep run, I-Con tuned: default vs default
TAG_BASELINE_TUNED = "rkdo.baseline_tuned"  # sweep run: "true" when I-Con had its own study
TAG_PRIMARY_METRIC = "rkdo.primary_metric"  # sweep run: the verdict's primary endpoint
TAG_MARGIN = "rkdo.margin"  # sweep run: its non-inferiority margin
TAG_ENVIRONMENT = "rkdo.environment"  # sweep run: JSON of `environment.py`'s block
TAG_FLOOR_KEY = "rkdo.floor_key"  # sweep run: what its floors were computed for (FloorKey.tag)
TAG_FLOOR_NOTES = "rkdo.floor_notes"  # sweep run: JSON {kind: why absent}, and the sweep's note
TAG_TIED_WITH_BEST = "rkdo.tied_with_best"  # search trial runs: "true" | "false"
TAG_LAYOUT = "rkdo.layout"  # sweep run: LAYOUT_VERSION
TAG_NOTE = "mlflow.note.content"  # sweep run's description: the verdict and the UI links
# Trial runs: "01", "02", ... (zero-padded: tags sort as text) in the order of
# SweepOutcome.ranked; a confirmation run carries the rank of the trial it re-runs;
# RANK_BASELINE and RANK_NONE (no finite metric) sort after every number.
TAG_RANK = "rkdo.rank"
RANK_BASELINE = "baseline"
RANK_NONE = "unranked"
RANK_MIN_WIDTH = 2
TAG_BEST = "rkdo.best"  # "true" on the best trial run only

TAG_STATUS = "rkdo.status"  # completed | early_stopped | diverged | failed | stopped | running
TAG_REASON = "rkdo.reason"
TAG_SEEDS = "rkdo.seeds"  # layout 1 only: comma list, on trial runs
TAG_CONTINUES = "rkdo.continues_run_id"  # on a restarted trial's (or seed's) new run
TAG_SUPERSEDED_BY = "rkdo.superseded_by"  # on the old run a restarted trial replaced
# A budget point's trial run (`<trial id>@e<k>`): the trial run whose training it is a prefix of.
TAG_BUDGET_OF = "rkdo.budget_of_run_id"

TAG_TRIAL_ID = "trial_id"
TAG_NODE_ID = "node_id"
TAG_SEED = "seed"
TAG_OVERSPECIALIZED = "overspecialized"  # "true" | "false"
TAG_EARLY_STOP_STEP = "early_stop_step"  # an integer, or "none"

STATUS_RUNNING = "running"
STATUS_FAILED = "failed"
STATUS_STOPPED = "stopped"

# --- params and metrics -------------------------------------------------------------------
CONFIG_PARAM_PREFIX = "config."  # layout 1, trial runs: the first seed's TrialConfig
BASE_PARAM_PREFIX = "base."  # layout 1, sweep run: the space's base TrialConfig values
SPEC_PARAM_PREFIX = "parameters."  # sweep run: each searched parameter's spec, as JSON
# Layout 2: in a spec, the value a trial runs with where the parameter is not sampled
# (its `when` fails, or the baseline arm): the space's base value.
SPEC_FALLBACK = "fallback"
LOG10_PARAM_PREFIX = "log10_"  # trial and seed runs: log10 of a log-scaled searched value
PARAM_SEED = "seed"  # seed runs: the repeat seed (the one TrialConfig field they add)
PARAM_SEEDS = "repeats.seeds"  # sweep run: the repeat seeds, comma list
DEFAULTS_VERDICT_METRIC_PREFIX = "defaults_verdict/"  # the same, default against default
VERDICT_METRIC_PREFIX = "verdict/"  # sweep run: verdict/<metric>/{delta,ci_lo,ci_hi,p,p_holm}
FLOOR_METRIC_PREFIX = "floor/"  # sweep run: floor/<kind>/<metric> (floors.KINDS)
METRIC_FLOOR_TEST_SIZE = "floor/test_size"  # sweep run: test images the floors were scored on
BEST_METRIC_PREFIX = "best/"  # sweep run: the best trial's eval/* and diag/* means
METRIC_FAILED = "diag/failed"  # trial runs: 1 when the trial raised, else 0
STD_SUFFIX = "_std"  # layout 1, trial runs: std over seeds next to each mean
# Layout 2, trial runs: statistics over the seeds, each under its own key (mean/eval/...),
# so that sorting by a seed's metric name lists seeds and by these lists configurations.
MEAN_PREFIX = "mean/"
STD_PREFIX = "std/"
CI95_PREFIX = "ci95/"  # half-width of the 95% t-interval of the mean (n >= 2 seeds)
# Per-step metrics of a seed run go to MLflow at a stride that keeps at most this many
# points per key (the full history is the run's history.json); the environment variable
# sets another bound, 0 for every step.
DEFAULT_STEP_POINTS = 200
STEP_POINTS_ENV = "RKDO_MLFLOW_STEP_POINTS"

# --- artifacts ----------------------------------------------------------------------------
ARTIFACT_SPACE_DIR = "space"  # sweep run: space.yaml (resolved) and the original file
ARTIFACT_RESOLVED_SPACE = "space/space.yaml"
ARTIFACT_LEADERBOARD = "sweep/leaderboard.json"
ARTIFACT_LOSS_CURVE = "plots/loss_curve.png"  # seed runs
ARTIFACT_HISTORY = "metrics/history.json"  # seed runs: every step, at full resolution
ARTIFACT_TRIAL_CURVE = "plots/seed_mean_curve.png"  # trial runs
ARTIFACT_SEED_TABLE = "tables/per_seed.csv"  # trial runs: one row per seed, final values
ARTIFACT_REPORT_DIR = "report"  # sweep run: the folder `rkdo-tune report` wrote
