"""Classifier throughput, load time and size, measured the way the daemon runs it: ``python bench/classify.py``.

- Load: a fresh Python process imports spaCy, loads the shipped model and the
  language-ID model (py3langid loads on the first post), each timed on its own
  and in total, imports included.
- Whole process: ``beacons classify`` as users run it, a fresh process fed
  JSON lines, short and 2,000-character posts separately: wall and CPU
  (user + system) of the child, every import and load included.
- Throughput: distinct posts, never a repeated list. Short posts are corpus
  sentences recombined into new posts (seeded); 2,000-character posts are
  built from sentences of many corpus posts with one brand mention in the
  middle. Every post is matched against all corpus brands (the product's
  BrandMatcher) *inside* the timer, then classified (masking, passages, four
  textcats, VADER, language id). One process, pinned to one core where the OS
  allows. VADER alone on the same posts is printed as a peer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_SENT = re.compile(r"(?<=[.!?])\s+")

LOAD = """
import json, time
t0 = time.perf_counter()
import spacy
t1 = time.perf_counter()
from beacons.nlp.model import SpacyClassifier, find_model
clf = SpacyClassifier(find_model({model!r}))
t2 = time.perf_counter()
from beacons.nlp.lang import detect
detect("Mi router se desconecta cada noche desde la actualización")
t3 = time.perf_counter()
print(json.dumps({{"import_spacy_s": t1 - t0, "model_s": t2 - t1, "langid_s": t3 - t2, "total_s": t3 - t0}}))
"""


def cold_load(model: str | None) -> dict[str, float]:
    """Load times in a fresh interpreter: nothing imported or cached beforehand."""
    code = LOAD.format(model=model)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return {k: round(v, 3) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def distinct_posts(n: int, length: int, seed: int) -> list[str]:
    """``n`` different posts of about ``length`` characters, recombined from corpus sentences."""
    from beacons.nlp.corpus import load_corpus

    corpus = load_corpus()
    rng = random.Random(seed)
    branded = [ex.full_text for ex in corpus.examples if len(ex.full_text) < 280]
    sentences = [s for ex in corpus.examples for s in _SENT.split(ex.text) if 20 <= len(s) <= 300]
    seen: set[str] = set()
    posts: list[str] = []
    while len(posts) < n:
        if length <= 280:
            # a short corpus post (it names its brand) with a different sentence from another post
            post = f"{rng.choice(branded)} {rng.choice(sentences)}"[: max(length, 40)]
        else:
            parts: list[str] = []
            while sum(len(p) + 1 for p in parts) < length:
                parts.append(rng.choice(sentences))
            parts.insert(len(parts) // 2, rng.choice(branded))
            post = " ".join(parts)[:length]
        if post not in seen:
            seen.add(post)
            posts.append(post)
    return posts


def throughput(posts: list[str], clf: object, matcher: object) -> tuple[float, float]:
    """Posts per wall-clock second and per CPU second for match + classify, in the pipeline's batches.

    The machine is shared: the CPU-second figure is what one core of our own does; the wall-clock
    one is what we got while others ran (the load average is printed beside it).
    """
    t, c = time.perf_counter(), time.process_time()
    for i in range(0, len(posts), 256):
        batch = posts[i : i + 256]
        items = [(text, matcher.match_text(text)) for text in batch]  # type: ignore[attr-defined]
        clf.classify_many(items)  # type: ignore[attr-defined]
    return len(posts) / (time.perf_counter() - t), len(posts) / max(1e-9, time.process_time() - c)


def whole_process(posts: list[str], brands: list[Any]) -> dict[str, float]:
    """``beacons classify`` as users run it: a fresh process on one core, JSON lines in and out.

    Wall and CPU (``os.wait4``) include Python's start, every import, the model and
    language-ID loads, matching and writing the answers: what a script feeding it pays.
    """
    import yaml

    from beacons.config import brand_config

    config = {
        "brands": [brand_config(b) for b in brands],
        "sources": [],
        "classifier": {"model": "auto"},
    }
    with tempfile.TemporaryDirectory(prefix="beacons-classify-") as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        lines = "".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in enumerate(posts)).encode()
        cmd = [sys.executable, "-m", "beacons", "classify", "--config", str(path)]
        with tempfile.TemporaryFile() as inp, tempfile.TemporaryFile() as out:
            inp.write(lines)
            inp.seek(0)
            started = time.perf_counter()
            proc = subprocess.Popen(
                cmd,
                stdin=inp,
                stdout=out,
                stderr=subprocess.DEVNULL,
                cwd=tmp,  # on the one core main() pinned this process to: children inherit it
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            answered = sum(1 for _ in out)
    if proc.returncode != 0 or answered != len(posts):
        raise RuntimeError(f"beacons classify exited {proc.returncode} with {answered} of {len(posts)} answers")
    cpu = usage.ru_utime + usage.ru_stime
    return {"posts_per_s": len(posts) / wall, "posts_per_cpu_s": len(posts) / cpu, "wall_s": wall, "cpu_s": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=10_000, help="distinct short posts (default 10,000)")
    parser.add_argument("--long", type=int, default=1_000, help="distinct 2,000-character posts (default 1,000)")
    parser.add_argument("--model", help="model directory (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (the table to stderr)")
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    load = cold_load(args.model)
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from beacons.match import BrandMatcher
    from beacons.nlp.corpus import load_corpus
    from beacons.nlp.model import SpacyClassifier, find_model

    path = find_model(args.model)
    if path is None:
        print("no model: run `beacons train` first", file=sys.stderr)
        return 1
    brands = list(load_corpus().brands.values())
    print(f"whole process: beacons classify on {args.short} distinct short posts...", file=sys.stderr)
    whole = whole_process(distinct_posts(args.short, 200, args.seed + 3), brands)
    print(f"whole process: beacons classify on {args.long} distinct 2,000-character posts...", file=sys.stderr)
    whole_long = whole_process(distinct_posts(args.long, 2000, args.seed + 4), brands)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    clf = SpacyClassifier(path)
    matcher = BrandMatcher(load_corpus().brands.values())
    print(f"building {args.short} short and {args.long} long distinct posts...", file=sys.stderr)
    short = distinct_posts(args.short, 200, args.seed)
    long_ = distinct_posts(args.long, 2000, args.seed + 1)
    warm = distinct_posts(300, 200, args.seed + 2)
    throughput(warm, clf, matcher)  # first-call costs (vocab growth, langid) are in the load figures
    print("timing on one core...", file=sys.stderr)
    short_ps, short_cpu = throughput(short, clf, matcher)
    long_ps, long_cpu = throughput(long_, clf, matcher)
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    vader = SentimentIntensityAnalyzer()
    t = time.perf_counter()
    for text in short:
        vader.polarity_scores(text[:1000])
    vader_ps = len(short) / (time.perf_counter() - t)
    rows = [
        ("short posts per CPU-second (~200 chars)", f"{short_cpu:,.0f}", ">= 2,000"),
        ("short posts per wall-clock second", f"{short_ps:,.0f}", ""),
        ("`beacons classify`, whole process, posts/CPU-s", f"{whole['posts_per_cpu_s']:,.0f}", ">= 2,000"),
        ("`beacons classify`, whole process, posts/s", f"{whole['posts_per_s']:,.0f}", ""),
        ("  ... 2,000-char posts, whole process, posts/CPU-s", f"{whole_long['posts_per_cpu_s']:,.0f}", "(stated)"),
        ("  ... 2,000-char posts, whole process, posts/s", f"{whole_long['posts_per_s']:,.0f}", ""),
        ("2,000-char posts per CPU-second", f"{long_cpu:,.0f}", "(stated)"),
        ("2,000-char posts per wall-clock second", f"{long_ps:,.0f}", ""),
        ("load average during the run (1 min)", f"{load_avg:.1f}", ""),
        ("VADER alone, short posts/s (peer)", f"{vader_ps:,.0f}", "(ref)"),
        ("cold load: import spacy (s)", f"{load['import_spacy_s']:.2f}", ""),
        ("cold load: model (s)", f"{load['model_s']:.2f}", ""),
        ("cold load: language id (s)", f"{load['langid_s']:.2f}", ""),
        ("cold load: total, imports included (s)", f"{load['total_s']:.2f}", "< 2"),
        ("model size on disk (MB)", f"{size / 1e6:.1f}", "< 40"),
    ]
    print(f"{'measure':44} {'value':>10} {'target':>10}", file=out)
    for name, value, target in rows:
        print(f"{name:44} {value:>10} {target:>10}", file=out)
    if args.json:
        print(
            json.dumps(
                {
                    "short_posts": len(short),
                    "long_posts": len(long_),
                    "short_posts_per_s": round(short_ps),
                    "long_posts_per_s": round(long_ps),
                    "short_posts_per_cpu_s": round(short_cpu),
                    "whole_process_posts_per_s": round(whole["posts_per_s"]),
                    "whole_process_posts_per_cpu_s": round(whole["posts_per_cpu_s"]),
                    "whole_process_cpu_s": round(whole["cpu_s"], 2),
                    "whole_process_wall_s": round(whole["wall_s"], 2),
                    "whole_process_long_posts_per_s": round(whole_long["posts_per_s"]),
                    "whole_process_long_posts_per_cpu_s": round(whole_long["posts_per_cpu_s"]),
                    "long_posts_per_cpu_s": round(long_cpu),
                    "load_average": round(load_avg, 1),
                    "vader_posts_per_s": round(vader_ps),
                    **load,
                    "size_mb": round(size / 1e6, 1),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
