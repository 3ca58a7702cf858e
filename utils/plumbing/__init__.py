"""One run's plumbing: the command line and its flags, running one run to its results line, the run's
identity and record, the results file, checkpoints, signals, the machine's description."""
