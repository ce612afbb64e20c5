"""The `audit` command: exact, near and mirrored copies between two data folders (`ferlib.audit.leakage`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferlib.audit.leakage import DEFAULT_THRESHOLD, HASH_BITS, audit_folders
from ferlib.data.sources import DataError
from ferlib.runtime import files
from ferlib.runtime.paths import default_cache_dir


def add_audit_command(sub) -> None:
    """Add audit to the command line's sub-parsers."""
    au = sub.add_parser("audit", help="leakage audit: exact, near and mirrored duplicates between two data folders")
    au.add_argument("--internal", required=True, type=Path,
                    help="internal data folder (any layout; split as runs split it)")
    au.add_argument("--external", required=True, type=Path, help="external data folder (a FER-2013 folder uses test/)")
    au.add_argument("--json", type=Path, help="write every flagged pair and the counts here")
    au.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD,
                    help=f"Hamming threshold in bits (default: {DEFAULT_THRESHOLD}, the calibrated one)")
    au.add_argument("--seed", type=int, default=42, help="seed of the train/validation split")
    au.add_argument("--cache", type=Path, default=None, help="cache folder for manifests and hashes")


def run_audit_command(args: argparse.Namespace) -> int:
    """Run the leakage audit; return the exit status."""
    try:
        _, result = audit_folders(args.internal, args.external, args.cache or default_cache_dir(), args.threshold,
                                  seed=args.seed)
    except (FileNotFoundError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report_text(result))
    if args.json:
        files.write_json(args.json, result)
        print(f"\nwrote {args.json} (every flagged pair and the counts)")
    return 0


def report_text(result: dict, max_pairs: int = 10) -> str:
    """Return a plain-text report of an audit result: data, skipped files, counts and the closest pairs."""
    lines = []
    for info in result.get("data", {}).values():
        lines.append(info["source"])
        lines += [f"  not used: {row['files']} file(s): {row['status']}: {row['reason']}" for row in info["not_used"]]
    lines += [f"  could not hash: {row['path']}: {row['reason']}" for row in result["skipped"]]
    lines.append(f"\nthreshold: {result['threshold']} of {HASH_BITS} bits")
    for name, s in result["summaries"].items():
        lines.append(f"\n{name.replace('_', ' ')}: {s['n_left']:,} x {s['n_right']:,} images, "
                     f"{s['pairs']} flagged pairs "
                     f"(exact {s['pairs_exact']}, near {s['pairs_near']}, mirrored {s['pairs_mirrored']}); "
                     f"{s['right_flagged']} of the {s['n_right']:,} right-hand images "
                     f"({s['right_flagged_fraction']:.1%}) "
                     f"have a copy on the left")
        for pair in sorted(result["pairs"][name], key=lambda p: p["distance"])[:max_pairs]:
            lines.append(f"  {pair['kind']:8s} {pair['distance']:3d}  {pair['left_path']}  {pair['right_path']}")
    return "\n".join(lines)
