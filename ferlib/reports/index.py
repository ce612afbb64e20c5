"""The landing page, ``outputs/reports/index.html``: every report with its one-line result, and the verdicts,
built from the executed notebooks and notebook 08's result file (run_all.sh rebuilds it after each notebook)."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from ferlib.evaluation.summary import conclusion_counts
from ferlib.experiments import FROM_SCRATCH
from ferlib.reports.banner import minutes_text
from ferlib.reports.catalog import CATALOG
from ferlib.reports.render import read_outputs
from ferlib.runtime.files import write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1150px;color:#1f2937;
line-height:1.45;padding:0 16px}
h1{margin-bottom:4px}h2{margin-top:32px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{border-bottom:1px solid #e5e7eb;padding:6px 8px;
text-align:left;vertical-align:top}th{background:#f9fafb}
.banner{padding:10px 14px;border-radius:6px;margin:12px 0}.amber{background:#fffbeb;border-left:6px solid #d97706}
.blue{background:#eff6ff;border-left:6px solid #2563eb}.failed{color:#b91c1c;font-weight:600}
.v-reproduced,.v-supported{background:#dcfce7}.v-not{background:#fee2e2}.v-nc{color:#6b7280}.small{color:#6b7280;font-size:13px}
"""


def _verdict_class(verdict: str) -> str:
    v = str(verdict)
    if ("see caveats" in v or "differ from the study" in v  # a verdict on other settings than the study's
            or v.startswith(("not comparable", "not run", "not tested", "no study value", "no evidence"))):
        return "v-nc"
    if v.startswith(("reproduced", "supported")):
        return "v-reproduced"
    return "v-not" if v.startswith(("not reproduced", "contradicted", "not supported")) else ""


def build_index(output_dir: Path) -> Path:
    """Write ``<output_dir>/reports/index.html`` (a row per notebook of the catalog) and return its path."""
    import nbformat

    executed = {name: output_dir / "notebooks" / f"{name}.ipynb" for name in CATALOG}
    shown = {name: read_outputs(nbformat.read(path, as_version=4)) for name, path in executed.items() if path.is_file()}
    cards = [o.run_card or {} for o in shown.values()]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Reports: facial emotion recognition "
             f"reproduction</title><style>{_CSS}</style></head><body>",
             "<h1>Facial emotion recognition: the study, reproduced</h1>",
             "<p class='small'>Each notebook of <code>notebooks/</code> as run by <code>run_all.sh</code>. Open a "
             "report for its figures and tables; the code-free version reads as a paper, the other shows the cells."
             "</p>", _run_banner(cards, sum(o.duration_s or 0 for o in shown.values())),
             "<h2>Reports</h2><table><tr><th>#</th><th>notebook</th><th>result</th><th>figures</th><th>wall time</th>"
             "</tr>"]
    for name, spec in CATALOG.items():
        if name not in shown:
            parts.append(f"<tr><td>{name[:2]}</td><td>{html.escape(spec.title)}</td><td class='small'>not run</td>"
                         "<td></td><td></td></tr>")
            continue
        o = shown[name]
        links = (f"<a href='{name}.nocode.html'>{html.escape(spec.title)}</a> "
                 f"<span class='small'>(<a href='{name}.html'>with code</a>)</span>")
        result = ("<span class='failed'>failed: open the report with code for the error</span>" if o.failed
                  else html.escape((o.headline or {}).get("headline") or "(no headline)"))
        parts.append(f"<tr><td>{name[:2]}</td><td>{links}</td><td>{result}</td><td>{len(o.figures)}</td>"
                     f"<td>{minutes_text(o.duration_s)}</td></tr>")
    headline = next((o.headline for name, o in shown.items() if name.startswith("08_")), None) or {}
    files = [output_dir / Path(rel).relative_to("outputs") if rel.startswith("outputs/") else Path(rel)
             for rel in headline.get("results", [])]  # notebook 08's result file
    summary = next((json.loads(path.read_text()) for path in files if path.is_file()), None)
    parts += ["</table>", _verdicts(summary), "</body></html>"]
    return write_text(output_dir / "reports" / "index.html", "\n".join(parts))


def _run_banner(cards: list[dict[str, Any]], total: float) -> str:
    if not cards:
        return "<div class='banner amber'>No notebook has run yet: <code>bash run_all.sh</code>.</div>"
    values = lambda key, width=None: ", ".join(sorted({str(c[key])[:width] for c in cards if c.get(key)}))
    data = sorted({d for c in cards for d in c.get("data", [])})
    synthetic = any(c.get("synthetic") for c in cards)
    random = any(str(c.get("weights") or "").startswith("random") for c in cards)
    scratch = any(FROM_SCRATCH in str(c.get("weights") or "") for c in cards)
    loud = "amber" if synthetic or random or scratch else "blue"
    head = ("Embedded synthetic data: the numbers test the pipeline, not the study. Run with --data and --external "
            "pointing at real data to reproduce it." if synthetic else "Real data.")
    if scratch:
        head += f" The transfer models were trained {FROM_SCRATCH} (no ImageNet weights here)."
    elif random:
        head += " Some backbones were randomly initialised (no ImageNet weights): transfer results are not the study's."
    facts = [("profile", values("profile")), ("data", "<br>".join(html.escape(d) for d in data)),
             ("machine", values("machine")), ("commit", values("git_commit", 12)),
             ("notebooks run", f"{len(cards)} of {len(CATALOG)}, {minutes_text(total)} in all")]
    body = "".join(f"<tr><th>{k}</th><td>{v if k == 'data' else html.escape(v)}</td></tr>" for k, v in facts)
    return f"<div class='banner {loud}'><strong>{html.escape(head)}</strong><table>{body}</table></div>"


def _verdicts(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return ("<h2>The study vs this run</h2><p>Notebook 08 has not run: its verdicts appear here once it has.</p>")
    out = ["<h2>The study's conclusions</h2>"]
    judged = [str(c["verdict"]) for c in summary.get("conclusions", [])]
    if judged:
        counts = conclusion_counts(judged)
        out.append(f"<p>{len(judged)} conclusions: " + ", ".join(f"{n} {html.escape(k)}" for k, n in counts.items())
                   + (" (a model at chance is no better than always answering the largest class: "
                      "<a href='08_summary.html'>the rule</a>)" if "no evidence" in counts else "") + "</p>")
    out.append("<table><tr><th>conclusion</th><th>verdict</th><th>evidence</th></tr>")
    for c in summary.get("conclusions", []):
        out.append(f"<tr><td>{html.escape(str(c['conclusion']))}</td><td class='{_verdict_class(c['verdict'])}'>"
                   f"{html.escape(str(c['verdict']))}</td><td class='small'>{html.escape(str(c.get('evidence', '')))}"
                   f"{'<br>caveats: ' + html.escape(str(c['caveats'])) if c.get('caveats') else ''}</td></tr>")
    counts = summary.get("verdict_counts", {})
    out += ["</table>", "<h2>Every number the study reports</h2>",
            "<p>" + ", ".join(f"{n} {html.escape(v)}" for v, n in counts.items()) + "</p>",
            "<table><tr><th>number</th><th>where</th><th>study</th><th>this run [95% CI]</th><th>verdict</th>"
            "<th>why</th></tr>"]
    for n in summary.get("numbers", []):
        value = n.get("this run")
        shown = "" if value is None else f"{value:.3f}"
        if value is not None and n.get("this run ci_low") is not None:
            shown += f" [{n['this run ci_low']:.3f}, {n['this run ci_high']:.3f}]"
        study = "" if n.get("study") is None else f"{n['study']:.2f}"
        out.append(f"<tr><td>{html.escape(str(n['claim']))}</td><td>{html.escape(str(n.get('where in the study', '')))}"
                   f"</td><td>{study}</td><td>{shown}</td><td class='{_verdict_class(n['verdict'])}'>"
                   f"{html.escape(str(n['verdict']))}</td>"
                   f"<td class='small'>{html.escape(str(n.get('why') or ''))}</td></tr>")
    out.append("</table>")
    return "\n".join(out)
