"""Scenario sets from outside (e.g. the Nezha dev set), scored as `sleuth eval` scores them, with
time and peak RSS per diagnosis. Goal: the largest case (by metrics.om size) <= 5 s and <= 250 MB.

Each case runs in its own child process (this script with --child: load_scenario + investigate,
then bot.evaluation.score), which prints its score, its investigation time and its own ru_maxrss,
so the peak RSS is per diagnosis. Prints component and category top-1/top-3 per system (the
folder holding the cases, or `system:` in truth.yml/scenario.yml) and per fault kind (truth.yml's
`fault` or `kind`, else its category).

Usage: python3 benchmarks/bench_scenarios.py DIR [DIR...] [--json] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXTRA = ("fault", "kind", "system")  # truth.yml keys read here, not by bot.scenario's Truth


def raw_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def child(folder: Path) -> None:
    """One case in this process: the same loading, investigation and scoring as `sleuth eval`."""
    import asyncio
    import resource
    from dataclasses import asdict

    from bot.evaluation import Score, score
    from bot.investigate import investigate
    from bot.scenario import Truth, load_scenario, load_truth

    try:
        raw = raw_yaml(folder / "truth.yml")
        # Truth forbids unknown keys: with fault/kind/system present, validate the rest with it.
        truth = Truth.model_validate({k: v for k, v in raw.items() if k not in EXTRA}) \
            if set(raw) & set(EXTRA) else load_truth(folder)
        scenario = load_scenario(folder)
        if truth is None:
            result = Score(scenario=folder.name, error="no truth.yml: cannot score")
        else:
            started = time.perf_counter()
            diagnosis = asyncio.run(investigate(scenario.request, scenario.config))
            result = score(folder.name, diagnosis, truth, (time.perf_counter() - started) * 1000)
    except Exception as exc:  # one broken case must not hide the others' figures
        result = Score(scenario=folder.name, error=f"{type(exc).__name__}: {exc}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"score": asdict(result), "rss_mb": round(rss_mb, 1)}))


def run_case(folder: Path) -> dict:
    """A case in a child process; adds what the parent knows (system, kind, size, wall time)."""
    truth, described = raw_yaml(folder / "truth.yml"), raw_yaml(folder / "scenario.yml")
    metrics = folder / "metrics.om"
    case = {"case": folder.name, "folder": str(folder),
            "system": str(truth.get("system") or described.get("system") or folder.resolve().parent.name),
            "kind": str(truth.get("fault") or truth.get("kind") or truth.get("category") or "?"),
            "metrics_mb": round(metrics.stat().st_size / 1e6, 2) if metrics.exists() else 0.0}
    started = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, __file__, "--child", str(folder)], cwd=ROOT,
                             capture_output=True, text=True, timeout=900)
        lines = out.stdout.strip().splitlines()
        reply = json.loads(lines[-1]) if out.returncode == 0 and lines else None
    except subprocess.TimeoutExpired:
        out, reply = None, None
    case["wall_s"] = round(time.perf_counter() - started, 2)
    if reply is None:
        why = (out.stderr.strip().splitlines() or ["no output"])[-1] if out else "timed out after 900 s"
        reply = {"score": {"error": f"child failed: {why}"}, "rss_mb": None}
    s = reply["score"]
    case.update(error=s.get("error", ""), expected=s.get("expected", ""), predicted=s.get("predicted", ""),
                time_s=round(s.get("time_ms", 0) / 1000, 2), rss_mb=reply["rss_mb"],
                **{k: bool(s.get(k)) for k in ("component_top1", "component_top3", "category_top1", "category_top3")})
    return case


RATES = ("component_top1", "component_top3", "category_top1", "category_top3")


def group(cases: list[dict]) -> dict:
    """Rates over the scored cases (errors count in n and errors, not in the rates), time, RSS."""
    scored = [c for c in cases if not c["error"]]
    out = {"n": len(cases), "errors": len(cases) - len(scored)}
    for key in RATES:
        out[key] = round(sum(c[key] for c in scored) / len(scored), 3) if scored else None
    times, rss = [c["time_s"] for c in scored], [c["rss_mb"] for c in cases if c["rss_mb"] is not None]
    out["time_s_median"] = round(statistics.median(times), 2) if times else None
    out["time_s_max"] = max(times) if times else None
    out["rss_mb_max"] = max(rss) if rss else None
    return out


def report(cases: list[dict]) -> dict:
    """Per system, per (system, kind), per kind over all systems, overall, and the largest case."""
    result: dict = {"systems": {}, "kinds": {}, "overall": group(cases), "cases": cases}
    for system in sorted({c["system"] for c in cases}):
        mine = [c for c in cases if c["system"] == system]
        result["systems"][system] = {**group(mine), "kinds": {k: group([c for c in mine if c["kind"] == k])
                                                             for k in sorted({c["kind"] for c in mine})}}
    for kind in sorted({c["kind"] for c in cases}):
        result["kinds"][kind] = group([c for c in cases if c["kind"] == kind])
    big = max(cases, key=lambda c: c["metrics_mb"])
    ok = not big["error"] and big["time_s"] <= 5 and (big["rss_mb"] or 1e9) <= 250
    result["largest"] = {k: big[k] for k in ("case", "system", "metrics_mb", "time_s", "wall_s", "rss_mb", "error")}
    result["largest"].update(goal="<= 5 s and <= 250 MB", ok=ok)
    return result


def pct(value) -> str:  # a rate as a percentage; "-" where nothing was scored
    return "-" if value is None else f"{value * 100:.0f}%"


def print_table(result: dict) -> None:
    cases = result["cases"]
    w = max([11] + [len(c["system"] + "/" + c["case"]) + 2 for c in cases])  # the case column's width
    print("cases (s = the investigation, timed as sleuth eval; wall = the child process; MB = its peak RSS)")
    print(f"  {'system/case':{w}} {'expected':36} {'top-1 (refuted ones skipped)':36} c1 c3 k1 k3 {'s':>5} {'wall':>5} {'MB':>6}")
    for c in cases:
        marks = " ".join(f"{'y' if c[k] else '.':>2}" for k in RATES)
        what = f"{c['error'][:84]:84}" if c["error"] else f"{c['expected'][:36]:36} {c['predicted'][:36]:36} {marks}"
        print(f"  {c['system'] + '/' + c['case']:{w}} {what} {c['time_s']:>5} {c['wall_s']:>5} {c['rss_mb'] or '-':>6}")
    w = max([w] + [len(s) + len(k) + 5 for s, g in result["systems"].items() for k in g["kinds"]])
    num = lambda v: "-" if v is None else v  # noqa: E731

    def row(label: str, g: dict) -> None:
        print(f"{label:{w}} {g['n']:>3} {g['errors']:>3} " + " ".join(f"{pct(g[k]):>6}" for k in RATES)
              + f" {num(g['time_s_median']):>6} {num(g['time_s_max']):>6} {num(g['rss_mb_max']):>7}")

    print("\nrates over scored cases (comp = faulty component, cat = category); s and MB as above")
    print(f"{'':{w}} {'n':>3} {'err':>3} {'comp@1':>6} {'comp@3':>6}"
          f" {'cat@1':>6} {'cat@3':>6} {'med s':>6} {'max s':>6} {'max MB':>7}")
    for system, g in result["systems"].items():
        row(system, g)
        for kind, k in g["kinds"].items():
            row(f"  {system} / {kind}", k)
    if len(result["systems"]) > 1:  # with one system these rows would repeat the ones above
        for kind, g in result["kinds"].items():
            row(f"all / {kind}", g)
        row("all", result["overall"])
    big = result["largest"]
    print(f"\nlargest case {big['system']}/{big['case']} (metrics.om {big['metrics_mb']} MB): "
          f"{big['time_s']} s (wall {big['wall_s']} s), peak RSS {big['rss_mb']} MB "
          f"(goal {big['goal']}): {'ok' if big['ok'] else 'OVER'}" + (f" [{big['error']}]" if big["error"] else ""))


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="folders of case folders, or case folders")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1: cleaner timing)")
    args = parser.parse_args()
    from bot.config import ConfigError
    from bot.scenario import find_scenarios, load_scenario

    folders: list[Path] = []
    for folder in args.dirs:  # each DIR must hold scenarios of its own
        try:
            folders += [f for f in find_scenarios([folder]) if f not in folders]
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for folder in folders:  # builds any history memory once, outside the timings
        try:
            load_scenario(folder)
        except ConfigError:
            pass  # the child reports it as the case's error
    if not args.json:
        print(f"{len(folders)} cases, {max(1, args.jobs)} at a time", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        cases = list(pool.map(run_case, folders))
    result = report(cases)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
