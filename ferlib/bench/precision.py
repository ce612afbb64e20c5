"""Training speed of C1-style networks in float32 and Keras' mixed_bfloat16, measured side by side.

Each network is built once per precision policy and timed on the same random batches; the policies
alternate over several rounds, so both see the same machine load, and the median time per batch is
kept. The result says how many images a second each network trains on, and the speed-up of bfloat16
over float32 as a ratio measured in this one run (CPUs with AVX512_BF16 or AMX run bfloat16 natively).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ferlib.evaluation.results import machine
from ferlib.models.builders import build_fer_cnn

POLICIES = ("float32", "mixed_bfloat16")
NETWORKS: dict[str, tuple[int, ...]] = {  # name: conv widths per block of fer_cnn
    "C1 32-256": (32, 64, 128, 256),
    "wide 48-384": (48, 96, 192, 384),
    "wider 64-512": (64, 128, 256, 512),
}


def cpu_bf16_flags() -> list[str]:
    """Return the bfloat16-related CPU flags this machine reports (avx512_bf16, amx_bf16), empty elsewhere."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return []
    flags = set(text.split())
    return sorted(flag for flag in ("avx512_bf16", "amx_bf16", "amx_tile") if flag in flags)


def _train_step_seconds(filters: tuple[int, ...], policy: str, images: np.ndarray, labels: np.ndarray,
                        steps: int, crop: int) -> list[float]:
    """Return the seconds of `steps` timed training batches (after two warm-up batches) under `policy`."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = build_fer_cnn(images.shape[1], filters, seed=0, crop=crop)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy",
                      jit_compile=False)
        for _ in range(2):
            model.train_on_batch(images, labels)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            model.train_on_batch(images, labels)
            times.append(time.perf_counter() - start)
        return times
    finally:
        keras.config.set_dtype_policy(previous)


def measure(networks: Sequence[str] = tuple(NETWORKS), batch_size: int = 64, image_size: int = 48, crop: int = 40,
            steps: int = 8, rounds: int = 3, seed: int = 0) -> dict[str, Any]:
    """Return per network and policy the median milliseconds per training batch and images per second, and
    bfloat16's speed-up over float32 (policies alternate for `rounds` rounds of `steps` batches)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch_size, image_size, image_size, 3)).astype(np.float32)
    labels = rng.integers(0, 5, batch_size)
    times: dict[str, dict[str, list[float]]] = {n: {p: [] for p in POLICIES} for n in networks}
    for _ in range(rounds):
        for name in networks:
            for policy in POLICIES:
                times[name][policy] += _train_step_seconds(NETWORKS[name], policy, images, labels, steps, crop)
    out: dict[str, Any] = {"machine": machine(), "cpu_bf16_flags": cpu_bf16_flags(), "batch_size": batch_size,
                           "image_size": image_size, "crop": crop, "batches_per_policy": steps * rounds,
                           "networks": {}}
    for name in networks:
        rows = {}
        for policy in POLICIES:
            ms = float(np.median(times[name][policy]) * 1000)
            rows[policy] = {"ms_per_batch": ms, "images_per_s": batch_size / ms * 1000,
                            "ms_p10_p90": [float(np.percentile(times[name][policy], q) * 1000) for q in (10, 90)]}
        rows["bf16_speedup"] = rows["float32"]["ms_per_batch"] / rows["mixed_bfloat16"]["ms_per_batch"]
        out["networks"][name] = {"filters": list(NETWORKS[name]), **rows}
    return out


def markdown(report: dict[str, Any]) -> list[str]:
    """Return the Markdown lines of a `measure` report: one row per network."""
    flags = ", ".join(report["cpu_bf16_flags"]) or "none"
    lines = [f"## Training speed: float32 vs mixed_bfloat16 (batches of {report['batch_size']}, "
             f"{report['image_size']} px, crop {report['crop']}; CPU bfloat16 flags: {flags})\n",
             "| network | float32 ms/batch | bfloat16 ms/batch | images/s float32 / bfloat16 | bfloat16 speed-up |",
             "|---|---|---|---|---|"]
    for name, row in report["networks"].items():
        f32, b16 = row["float32"], row["mixed_bfloat16"]
        lines.append(f"| {name} | {f32['ms_per_batch']:.0f} | {b16['ms_per_batch']:.0f} | "
                     f"{f32['images_per_s']:.0f} / {b16['images_per_s']:.0f} | {row['bf16_speedup']:.2f}x |")
    lines += ["", f"Median of {report['batches_per_policy']} timed batches per policy, the policies alternating; "
              "raw `train_on_batch`, without the input pipeline.", ""]
    return lines
