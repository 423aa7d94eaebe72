"""Cache benchmark: cold run, identical warm run, and a run where only the target data changed.

With ``--cli`` (what users get): each run is ``transferflow run`` in a fresh process, fresh
artefact store and fresh ``PREFECT_HOME``; the cold run also starts the local background Prefect
server, later runs reuse it (flows/local_server.py). Without it: the flow in-process against one
temporary Prefect server started before timing (server start-up and imports not counted).

    python benchmarks/cache.py --cli [--mdsd ../shared/data/mdsd] [--source books] [--target ...]
    python benchmarks/cache.py [--mdsd ../shared/data/mdsd] [--source books] [--target kitchen]
    python benchmarks/cache.py --s3      # data and store on S3 (a local moto server): cold, warm,
                                         # and warm from "another machine" (an empty local folder)

Prints a table and writes benchmarks/results/cache.json (cache_s3.json with --s3).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--source", default="books")
    parser.add_argument("--target", default="kitchen")
    parser.add_argument("--target-train-size", type=int, default=200)
    parser.add_argument(
        "--s3",
        action="store_true",
        help="data and store on a local S3-compatible server (moto, dev extra)",
    )
    parser.add_argument("--cli", action="store_true", help="time the CLI in fresh processes")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.out = args.out or REPO / "benchmarks" / "results" / (
        "cache_s3.json" if args.s3 else "cache_cli.json" if args.cli else "cache.json"
    )
    if not (args.mdsd / args.source / "train.csv").is_file():
        print(f"MDSD data not found under {args.mdsd}; pass --mdsd", file=sys.stderr)
        return 2
    if args.cli:
        return cli_main(args)

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.testing.utilities import prefect_test_harness

    from transferflow.config.settings import build_config
    from transferflow.flows.transfer import transfer_learning

    work = Path(tempfile.mkdtemp(prefix="tf-cache-bench-"))
    target_train = work / "target_train.csv"
    shutil.copy(args.mdsd / args.target / "train.csv", target_train)
    files = {
        "source": str(args.mdsd / args.source / "train.csv"),
        "target": str(target_train),
        "test": str(args.mdsd / args.target / "test.csv"),
    }
    store = str(work / "store")
    if args.s3:
        files, store = _s3(files, work)

    def raw(name: str) -> dict:
        return {
            "data": {
                "source": {"name": args.source, "paths": [files["source"]]},
                "target": {
                    "name": args.target,
                    "paths": [files["target"]],
                    "test_paths": [files["test"]],
                },
                "target_train_size": args.target_train_size,
            },
            "cache": {"dir": store},
            "output_dir": str(work / "runs"),
            "run_name": name,
        }

    def run(name: str) -> dict:
        start = time.perf_counter()
        state = transfer_learning(build_config(raw(name)), return_state=True)
        wall = time.perf_counter() - start
        metrics = state.result()["metrics"]
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
        cached = sorted(
            r.name.rsplit("-", 1)[0] for r in runs if r.state and r.state.name == "Cached"
        )
        durations = {r.name: round(r.total_run_time.total_seconds(), 2) for r in runs}
        return {
            "run": name,
            "wall_s": round(wall, 2),
            "cached_tasks": cached,
            "task_seconds": durations,
            "transfer_accuracy": metrics["candidates"]["transfer"]["accuracy"],
        }

    with prefect_test_harness(server_startup_timeout=120):
        rows = [run("cold"), run("warm")]
        if args.s3:
            os.environ["TRANSFERFLOW_LOCAL_DIR"] = str(work / "machine-b")  # nothing local
            rows.append(run("other-machine"))
        else:
            frame = pd.read_csv(target_train)
            frame.iloc[: len(frame) - 100].to_csv(
                target_train, index=False
            )  # the target data changed
            rows.append(run("target-changed"))
    cold = rows[0]["wall_s"]
    for row in rows:
        row["ratio_to_cold"] = round(row["wall_s"] / cold, 3)
    print(f"\n{'run':<16}{'wall s':>8}{'/cold':>8}  cached tasks")
    for row in rows:
        print(
            f"{row['run']:<16}{row['wall_s']:>8.2f}{row['ratio_to_cold']:>8.3f}  "
            f"{', '.join(row['cached_tasks'])}"
        )
    print(
        "\nslowest tasks of the warm run:",
        sorted(rows[1]["task_seconds"].items(), key=lambda kv: -kv[1])[:8],
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"pair": f"{args.source}->{args.target}", "rows": rows}, indent=2)
    )
    print(f"\nwritten {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def cli_main(args) -> int:
    """Cold, identical and target-changed runs through ``transferflow run`` subprocesses."""
    import subprocess

    work = Path(tempfile.mkdtemp(prefix="tf-cache-cli-"))
    target_train = work / "target_train.csv"
    shutil.copy(args.mdsd / args.target / "train.csv", target_train)
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect-home"),
        "TRANSFERFLOW_REGISTRY_DIR": str(work / "registry"),
        "TRANSFERFLOW_XLA_CACHE": str(work / "xla"),  # cold means no compiled programs either
    }
    env.pop("PREFECT_API_URL", None)
    cli = [sys.executable, "-m", "transferflow.flows.cli"]

    def run(name: str) -> dict:
        start = time.perf_counter()
        proc = subprocess.run(
            [
                *cli, "run",
                "--source", str(args.mdsd / args.source / "train.csv"),
                "--target", str(target_train),
                "--target-test", str(args.mdsd / args.target / "test.csv"),
                "--text-column", "title", "--text-column", "text",
                "--target-train-size", str(args.target_train_size),
                "--cache-dir", str(work / "store"),
                "--output-dir", str(work / "runs"),
                "--run-name", name,
            ],
            env=env, cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{name} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        log = proc.stdout + proc.stderr
        cached = sorted(
            {line.split("Task run '")[1].split("'")[0] for line in log.splitlines()
             if "Finished in state Cached" in line}
        )  # fmt: skip
        accuracy = next(
            float(line.split()[1]) for line in proc.stdout.splitlines()
            if line.strip().startswith("transfer ")
        )  # fmt: skip
        return {"run": name, "wall_s": round(wall, 2), "cached_tasks": cached,
                "transfer_accuracy": accuracy}  # fmt: skip

    def timed(*args: str) -> tuple[float, subprocess.CompletedProcess]:
        start = time.perf_counter()
        proc = subprocess.run([*cli, *args], env=env, cwd=REPO, capture_output=True, text=True)
        return time.perf_counter() - start, proc

    try:
        rows = [run("cold"), run("warm")]
        # Two identical runs leave one registry version.
        _, listed = timed("models", "list", "--json")
        versions_after_identical = len(json.loads(listed.stdout))
        # A missing input is reported as fast as --help answers (best of 3 each).
        help_s = min(timed("--help")[0] for _ in range(3))
        missing = [
            timed("run", "--source", str(work / "absent.csv"), "--target", str(target_train))
            for _ in range(3)
        ]
        missing_s = min(t for t, _ in missing)
        assert all(proc.returncode == 2 for _, proc in missing), missing[0][1].stderr
        frame = pd.read_csv(target_train)
        frame.iloc[: len(frame) - 100].to_csv(target_train, index=False)  # the target changed
        rows.append(run("target-changed"))
    finally:
        subprocess.run([*cli, "server", "stop"], env=env, cwd=REPO, capture_output=True)
    cold = rows[0]["wall_s"]
    for row in rows:
        row["ratio_to_cold"] = round(row["wall_s"] / cold, 3)
    print(
        f"\n{'run':<16}{'wall s':>8}{'/cold':>8}  cached tasks  (transferflow run, fresh process)"
    )
    for row in rows:
        print(
            f"{row['run']:<16}{row['wall_s']:>8.2f}{row['ratio_to_cold']:>8.3f}  "
            f"{', '.join(row['cached_tasks'])}"
        )
    print(
        f"registry versions after two identical runs: {versions_after_identical}\n"
        f"missing input reported in {missing_s:.2f} s; --help answers in {help_s:.2f} s "
        f"(ratio {missing_s / help_s:.2f})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "pair": f"{args.source}->{args.target}",
                "cli": True,
                "rows": rows,
                "versions_after_identical_runs": versions_after_identical,
                "missing_input_s": round(missing_s, 3),
                "help_s": round(help_s, 3),
            },
            indent=2,
        )
    )
    print(f"\nwritten {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _s3(files: dict[str, str], work: Path) -> tuple[dict[str, str], str]:
    """Start a local S3 server (moto), upload the files; return their URLs and the store URL."""
    import socket

    import fsspec
    from moto.server import ThreadedMotoServer

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        TRANSFERFLOW_LOCAL_DIR=str(work / "machine-a"),
    )
    fs = fsspec.filesystem("s3")
    fs.mkdir("bench")
    urls = {}
    for role, path in files.items():
        urls[role] = f"s3://bench/data/{role}.csv"
        fs.put_file(path, urls[role][len("s3://") :])
    return urls, "s3://bench/store"


if __name__ == "__main__":
    raise SystemExit(main())
