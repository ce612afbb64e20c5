"""C1, the CPU champion: its recipe, tables, records, training run, ablation, distillation and commands.

Each module imports only those before it: recipe -> tables -> records -> run -> ablation, distillation ->
commands (`tests/test_layout.py` checks the order).
"""
