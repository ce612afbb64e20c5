"""Benchmarks: timers, `python -m ferlib bench`, the fer package beside this project, the GPU check, memory."""
