"""`python -m rkdo_tune` is the same as the `rkdo-tune` console script."""

from rkdo_tune.cli import main

main()
