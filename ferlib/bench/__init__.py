"""`python -m ferlib bench`: this project's models beside the `fer` package, latency and accuracy."""
