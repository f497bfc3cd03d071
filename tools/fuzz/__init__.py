"""Fuzzing the loaders and converters: targets.py (what is fuzzed), mutate.py (the pure-Python mutator), make_corpus.py (the seeds); the driver is tools/fuzz_run.py."""
