"""Scale benchmark: cold default runs through the CLI on large realistic sources, beside the pooled
NB-LR peer fitted on the same rows in the same run.

The sources are made by this script's own generator from the MDSD reviews of books, dvd and
electronics (``train.csv`` and books' ``unlabeled.csv``, whose 4-5 star ratings count as
positive and 1-2 stars as negative; the target domain, kitchen, is never used). A generated
review takes one real review's title and 2-7 sentences drawn from real reviews of the same domain
and label, so its words, lengths and sentiment cues are those of real reviews, while a million of
them are (almost all) distinct texts. Seeded: the same ``--seed`` writes the same file.

Each size is one ``transferflow run`` in a fresh process with a fresh artefact store, registry,
XLA cache and ``PREFECT_HOME`` (cold: nothing cached, the local server started by the call),
target kitchen with 200 balanced labels (title + text), tested on kitchen's ``test.csv``. Peak
RSS is the largest resident set of the run's process tree (``getrusage(RUSAGE_CHILDREN)`` of a
wrapper process, so each measurement is alone). The peer is scikit-learn NB-LR (Wang & Manning
2012; :func:`transferflow.models.baselines.train_nb_lr`, binarised 1-3-grams, C = 1) fitted on
the same source rows + the same 200 target labels, read from the same files, timed the same way.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--mdsd ../shared/data/mdsd]
        [--python .venv/bin/python | --cli OLD/.venv/bin/transferflow] [--label new] [--no-peer]
    python benchmarks/scale.py --generate 200000 --out /tmp/source_200k.csv   # the file only
    python benchmarks/scale.py --scoring [--ten-million]   # scoring: 1M rows (vs scikit-learn),
                                       # 1 and 2 Dask workers, 10M rows (peak RSS)

Prints a table and writes benchmarks/results/scale.csv and scale.json (keeping earlier rows of other
codes or sizes, so two codes measured in one sitting share one table).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCE_DOMAINS = ("books", "dvd", "electronics")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _reviews(mdsd: Path) -> pd.DataFrame:
    """Labelled real reviews of the source domains (title, text, label, domain)."""
    frames = []
    for d in SOURCE_DOMAINS:
        train = pd.read_csv(mdsd / d / "train.csv")[["title", "text", "label"]]
        train["domain"] = d
        frames.append(train)
        extra = mdsd / d / "unlabeled.csv"
        if extra.is_file():
            more = pd.read_csv(extra)
            more = more[more["rating"] != 3].copy()
            more["label"] = np.where(more["rating"] >= 4, "positive", "negative")
            more["domain"] = d
            frames.append(more[["title", "text", "label", "domain"]])
    out = pd.concat(frames, ignore_index=True)
    return out[out["text"].notna()].reset_index(drop=True)


def generate(rows: int, mdsd: Path, out: Path, seed: int = 0) -> Path:
    """Write ``rows`` generated reviews (``title,text,label``), balanced by label, to ``out``.

    Args:
        rows: how many reviews.
        mdsd: the MDSD folder.
        out: the CSV file to write.
        seed: the generator's seed.

    Returns:
        ``out``.
    """
    reviews = _reviews(mdsd)
    rng = np.random.default_rng(seed)
    pools = {}
    for (domain, label), group in reviews.groupby(["domain", "label"]):
        sentences = [s for t in group["text"] for s in _SENTENCE.split(str(t)) if s.strip()]
        pools[(domain, label)] = (group["title"].fillna("").tolist(), sentences)
    keys = sorted(pools)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "text", "label"])
        done = 0
        while done < rows:
            n = min(50_000, rows - done)
            domains = rng.integers(0, len(SOURCE_DOMAINS), n)
            labels = np.arange(done, done + n) % 2  # balanced, alternating
            lengths = rng.integers(2, 8, n)
            for d, lab, k in zip(domains, labels, lengths, strict=True):
                key = (SOURCE_DOMAINS[d], ("negative", "positive")[lab])
                titles, sentences = pools[key if key in pools else keys[0]]
                title = titles[rng.integers(len(titles))]
                picks = rng.integers(0, len(sentences), k)
                writer.writerow([title, " ".join(sentences[i] for i in picks), key[1]])
            done += n
    tmp.replace(out)
    return out


_WRAPPER = """
import json, resource, subprocess, sys, threading, time
import psutil
proc = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1], "w"), stderr=subprocess.STDOUT)
peak = 0
def watch():
    global peak
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        for p in tree:
            try:
                if "server" in " ".join(p.cmdline()[1:4]):  # the shared Prefect server
                    continue
                total += p.memory_info().rss
            except psutil.Error:
                pass
        peak = max(peak, total)
        time.sleep(0.2)
thread = threading.Thread(target=watch, daemon=True)
thread.start()
rc = proc.wait()
thread.join(1)
print(json.dumps([rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, peak]))
"""


def _measured(cmd: list[str], env: dict, log: Path) -> tuple[float, float, int, float]:
    """Run ``cmd`` under a wrapper that watches its memory: (wall s, peak RSS of its largest
    process in GB, exit code, peak of the tree's summed RSS in GB, sampled every 0.2 s, the
    shared Prefect server left out)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(log), *cmd],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    rc, kb, tree = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, kb / 1024**2, rc, tree / 1024**3


PEER = """
import sys, time
import numpy as np, pandas as pd
from transferflow.models.baselines import train_nb_lr, nb_lr_proba
source, target, test, n = sys.argv[1:5]
def texts(f):
    return (f["title"].fillna("") + " " + f["text"].fillna("")).str.strip().tolist()
src = pd.read_csv(source, dtype=str, keep_default_na=False)
tgt = pd.read_csv(target, dtype=str, keep_default_na=False)
tgt = pd.concat(g.sample(int(n) // 2, random_state=0) for _, g in tgt.groupby("label"))
model = train_nb_lr(texts(src) + texts(tgt), src["label"].tolist() + tgt["label"].tolist())
tst = pd.read_csv(test, dtype=str, keep_default_na=False)
labels = sorted(set(tst["label"]))
proba = nb_lr_proba(model, texts(tst), labels)
print("peer_accuracy", float(np.mean(np.array(labels)[proba.argmax(1)] == tst["label"].to_numpy())))
"""


def _cold_env(work: Path) -> dict:
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect-home"),
        "TRANSFERFLOW_REGISTRY_DIR": str(work / "registry"),
        "TRANSFERFLOW_XLA_CACHE": str(work / "xla"),
        "TRANSFERFLOW_HOME": str(work / "home"),  # nothing of a measured run lands in ~
    }
    env.pop("PREFECT_API_URL", None)
    return env


def measure(size: int, source: Path, args, work: Path) -> list[dict]:
    """The default run and (unless ``--no-peer``) the peer on one source file."""
    kitchen = args.mdsd / "kitchen"
    env = _cold_env(work)
    cli = [str(args.cli)] if args.cli else [str(args.python), "-m", "transferflow.flows.cli"]
    rows = []
    log = work / "run.log"
    wall, peak, rc, tree = _measured(
        [
            *cli, "run", "--source", str(source),
            "--target", str(kitchen / "train.csv"), "--target-test", str(kitchen / "test.csv"),
            "--text-column", "title", "--text-column", "text", "--target-train-size", "200",
            "--cache-dir", str(work / "store"), "--output-dir", str(work / "runs"),
            "--run-name", "scale", *args.extra,
        ],
        env,
        log,
    )  # fmt: skip
    text = log.read_text(errors="replace")
    subprocess.run([*cli, "server", "stop"], env=env, cwd=REPO, capture_output=True)
    if rc != 0:
        raise SystemExit(f"run on {size} rows failed (exit {rc}):\n{text[-3000:]}")
    accuracy = next(
        float(line.split()[1]) for line in text.splitlines() if line.strip().startswith("transfer ")
    )
    stages = _stage_times(text)
    rows.append(
        {
            "label": args.label,
            "what": "transferflow run (default, CLI, cold)",
            "source_rows": size,
            "wall_s": round(wall, 1),
            "peak_rss_gb": round(peak, 2),
            "tree_rss_gb": round(tree, 2),
            "accuracy": accuracy,
            "stages": stages,
        }
    )
    if not args.no_peer:
        log = work / "peer.log"
        wall, peak, rc, tree = _measured(
            [
                str(args.python), "-c", PEER, str(source), str(kitchen / "train.csv"),
                str(kitchen / "test.csv"), "200",
            ],
            env,
            log,
        )  # fmt: skip
        text = log.read_text(errors="replace")
        if rc != 0:
            raise SystemExit(f"peer on {size} rows failed:\n{text[-3000:]}")
        accuracy = float(text.split("peer_accuracy")[1].split()[0])
        rows.append(
            {
                "label": args.label,
                "what": "pooled NB-LR peer (scikit-learn)",
                "source_rows": size,
                "wall_s": round(wall, 1),
                "peak_rss_gb": round(peak, 2),
                "tree_rss_gb": round(tree, 2),
                "accuracy": accuracy,
                "stages": {},
            }
        )
    return rows


def _stage_times(log: str) -> dict:
    """Seconds per task: the flow's tasks run one after another, so a task took the time from the
    previous task's end (or the first log line) to its own end, by the log's timestamps."""
    stamp = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d+)")
    out: dict[str, float] = {}
    last = None
    for line in log.splitlines():
        m = stamp.match(line)
        if not m:
            continue
        t = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + float("0." + m[4])
        last = t if last is None else last
        name = re.search(r"Task run '([a-z_]+)", line)
        if name and "Finished in state" in line:
            out[name[1]] = round(out.get(name[1], 0.0) + t - last, 1)
            last = t
    return out


def scoring(args) -> list[dict]:
    """Scoring at scale through the CLI (start-up included), on a champion trained by a default
    run (books -> kitchen, 200 labels; benchmarks/scoring.py's setup): 1M rows beside the bare
    scikit-learn loop on the same rows; 10M rows for peak RSS; 1M rows on 1 and 2 Dask workers
    (``--dask local``)."""
    from benchmarks.scoring import prepare, sklearn_loop

    work = Path(tempfile.mkdtemp(prefix="tf-scale-score-"))
    env = _cold_env(work)
    env["TRANSFERFLOW_CACHE_DIR"] = str(work / "cache")
    cli = [str(args.python), "-m", "transferflow.flows.cli"]
    rows: list[dict] = []
    try:
        prepare(cli, args.mdsd, work, env, 1_000_000)
        one = work / "score_input.csv"
        kitchen = pd.read_csv(args.mdsd / "kitchen" / "train.csv").groupby("label").head(100)

        def score(name: str, path: Path, n: int, *extra: str) -> None:
            wall, peak, rc, tree = _measured(
                [*cli, "score", "--input", str(path), "--output", str(work / "pred.csv"), *extra],
                env,
                work / "score.log",
            )
            if rc != 0:
                raise SystemExit((work / "score.log").read_text()[-3000:])
            rows.append({"label": args.label, "what": name, "rows": n, "wall_s": round(wall, 1),
                         "rows_per_s": round(n / wall), "peak_rss_gb": round(peak, 2),
                         "tree_rss_gb": round(tree, 2)})  # fmt: skip
            print(rows[-1])

        score("transferflow score (default)", one, 1_000_000)
        sk = sklearn_loop(kitchen, one, work / "sk.csv")
        rows.append({"label": args.label, "what": "scikit-learn loop (in-process)",
                     "rows": 1_000_000, "wall_s": round(sk, 1), "rows_per_s": round(1e6 / sk),
                     "peak_rss_gb": None})  # fmt: skip
        print(rows[-1])
        for workers in ("1", "2"):
            score(f"transferflow score --dask local --dask-workers {workers}", one, 1_000_000,
                  "--dask", "local", "--dask-workers", workers)  # fmt: skip
        if args.ten_million:
            ten = work / "ten.csv"
            with open(one, encoding="utf-8") as src, open(ten, "w", encoding="utf-8") as dst:
                header, body = src.readline(), src.read()
                dst.write(header)
                for _ in range(10):
                    dst.write(body)
            n = 10 * 1_000_000
            (work / "pred.csv").unlink(missing_ok=True)
            score("transferflow score (default)", ten, n)
    finally:
        subprocess.run([*cli, "server", "stop"], env=env, cwd=REPO, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="source rows per run; 'books' runs MDSD books/train.csv (books -> kitchen)",
    )
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument(
        "--cli",
        type=Path,
        help="the code to run as a 'transferflow' executable (e.g. an older checkout's "
        ".venv/bin/transferflow, whose modules may be laid out differently); default: "
        "--python -m transferflow.flows.cli",
    )
    parser.add_argument("--label", default="main", help="names the code measured (e.g. a commit)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        type=lambda v: f"--set={v}",
        help="a setting for the run (section.field=value), e.g. to measure another sample size",
    )
    parser.add_argument("--generate", type=int, help="only write a generated source of N rows")
    parser.add_argument("--out", type=Path, help="with --generate: the file")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tf-scale",
        help="where generated sources are kept (reused across calls)",
    )
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--scoring", action="store_true", help="the scoring figures instead")
    parser.add_argument("--ten-million", action="store_true", help="with --scoring: 10M rows too")
    args = parser.parse_args()
    if args.scoring:
        rows = scoring(args)
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "scale_scoring.json").write_text(json.dumps(rows, indent=2))
        print(pd.DataFrame(rows).to_string(index=False))
        return 0
    if args.generate:
        generate(args.generate, args.mdsd, args.out or Path(f"source_{args.generate}.csv"))
        return 0
    rows: list[dict] = []
    for token in args.sizes.split(","):
        if token == "books":  # the small run of the issue: MDSD books train.csv (2,000 rows)
            source, size = args.mdsd / "books" / "train.csv", 1600
        else:
            size = int(token)
            source = args.data / f"source_{size}.csv"
            if not source.is_file():
                generate(size, args.mdsd, source)
        work = Path(tempfile.mkdtemp(prefix=f"tf-scale-{size}-"))
        try:
            rows += measure(size, source, args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _print(rows[-2:] if not args.no_peer else rows[-1:])
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "scale.json"
    earlier = json.loads(path.read_text()) if path.is_file() else []

    def key(r: dict) -> tuple:
        return r["label"], r["what"], r["source_rows"]

    # A measurement replaces only the earlier one of the same code, kind and size.
    keep = [r for r in earlier if key(r) not in {key(x) for x in rows}]
    everything = keep + rows
    path.write_text(json.dumps(everything, indent=2))
    pd.DataFrame([{k: v for k, v in r.items() if k != "stages"} for r in everything]).to_csv(
        args.results / "scale.csv", index=False
    )
    print("\nAll measurements so far:")
    _print(everything)
    print(f"written {path} and scale.csv")
    return 0


def _print(rows: list[dict]) -> None:
    print(
        f"{'code':>10} {'what':>40} {'rows':>9} {'wall s':>8} {'peak GB':>8} {'tree GB':>8} "
        f"{'accuracy':>8}"
    )
    for r in rows:
        print(
            f"{r['label']:>10} {r['what']:>40} {r['source_rows']:>9} {r['wall_s']:>8} "
            f"{r['peak_rss_gb']:>8} {r.get('tree_rss_gb', '-'):>8} {r['accuracy']:>8.4f}"
        )


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    raise SystemExit(main())
