"""The `leadron` command line."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import warnings
from datetime import date
from pathlib import Path

from leadron.settings import Settings, get_settings
from leadron_cli.keys import add_keys_parser


def _stage(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from leadron.demo_data import generate

    _stage(f"generate: about {args.events:,} events, {args.tenants} tenants, seed {args.seed} -> {args.out}")
    result = generate(
        Path(args.out),
        events=args.events,
        tenants=args.tenants,
        seed=args.seed,
        end=args.end,
        days=args.days,
        progress=lambda m: _stage(f"  {m}"),
    )
    _stage(
        f"generate: {result.events:,} event lines, {result.leads:,} leads, {result.messages:,} messages "
        f"in {result.seconds:.1f}s"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from leadron.importer import import_folder, iter_messages

    settings = get_settings()
    _stage(f"import: {args.dir} -> {settings.landing_dir}")
    started = time.perf_counter()
    counts = {"landed": 0, "skipped": 0, "rejected": 0, "validated": 0}

    def progress(outcome) -> None:
        counts[outcome.status] += 1
        if outcome.status == "validated":  # event files are landed together once validated
            if counts["validated"] % 50 == 0:
                _stage(f"  validated {counts['validated']} event files")
            return
        if outcome.status == "rejected" or outcome.kind == "dimension" or counts[outcome.status] % 100 == 0:
            detail = outcome.detail if outcome.status == "skipped" else ""
            _stage(f"  {outcome.status:<8} {outcome.file} ({outcome.rows:,} rows) {detail}")

    try:
        report = import_folder(Path(args.dir), settings, progress=progress)
    except FileNotFoundError as exc:
        print(f"leadron import: {exc}", file=sys.stderr)
        return 2
    for line in iter_messages(report):
        print(line, file=sys.stderr)
    _stage(
        f"import: {counts['landed']} files landed ({report.events_landed:,} events), {counts['skipped']} skipped, "
        f"{counts['rejected']} rejected in {time.perf_counter() - started:.1f}s"
    )
    return 0 if report.ok else 1


def _engine_problem(target: str) -> str | None:
    """Why the dbt target cannot run here, if it cannot (said before Dagster and dbt start)."""
    if target not in ("duckdb", "spark"):
        return f"LEADRON_DBT_TARGET={target!r}: the targets are duckdb and spark"
    if target == "spark" and importlib.util.find_spec("dbt.adapters.spark") is None:
        return (
            "LEADRON_DBT_TARGET=spark needs the spark extra: pip install -c constraints.txt -e '.[spark]' (and Java 17)"
        )
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.runner import partition_window, pending_window, pending_work, run_build

    settings = get_settings()
    problem = _engine_problem(settings.dbt_target)
    if problem:
        print(f"leadron run: {problem}", file=sys.stderr)
        return 2
    if args.partition is not None:
        days = (args.partition, args.partition)
    elif args.all or args.full_refresh:
        days = partition_window(settings, None)
    else:
        pending = pending_work(settings)
        days = pending_window(settings, pending)
        if days is None:
            _stage("run: nothing landed since the last successful run; `leadron run --all` rebuilds every landed day")
            return 0
        _stage("run: re-deriving what landed since the last successful run:")
        for line in pending.describe():
            _stage(f"  {line}")
    _stage(f"run: building the warehouse through Dagster ({settings.warehouse_path})")
    outcome = run_build(
        settings, days=days, progress=_stage, full_refresh=args.full_refresh, full_tests=args.full_tests
    )
    status = "succeeded" if outcome.success else f"FAILED at {', '.join(outcome.failed_steps) or 'a step'}"
    _stage(
        f"run: {status}; partitions {outcome.first_day}..{outcome.last_day}; run {outcome.run_id} "
        f"in {outcome.seconds:.1f}s"
    )
    return 0 if outcome.success else 1


def cmd_train(args: argparse.Namespace) -> int:
    from orchestration.runner import run_training

    settings = get_settings()
    _stage("train: lead-score candidate -> blocking promotion check -> re-score every open lead")
    outcome = run_training(settings, progress=_stage)
    if outcome.success:
        status = "succeeded (candidate promoted)"
    elif outcome.failed_checks:
        status = f"candidate NOT promoted ({', '.join(outcome.failed_checks)} failed; scores keep the current model)"
    else:
        status = f"FAILED at {', '.join(outcome.failed_steps) or 'a step'}"
    _stage(f"train: {status}; run {outcome.run_id} in {outcome.seconds:.1f}s")
    # A refused promotion is the check doing its job, not an error of the command.
    return 0 if outcome.success or outcome.failed_checks else 1


def cmd_demo_mail(settings: Settings, tenant: str | None) -> list:
    from leadron_cli.demo_mail import send_demo_reports
    from orchestration.runner import instance_for

    if tenant is None:
        return []
    _stage(f"reports: delivering the demo's daily and weekly reports for {tenant} to a local SMTP server")
    paths = send_demo_reports(settings, tenant, instance_for(settings))
    _stage(f"reports: {len(paths)} e-mails received, written to {settings.home / 'demo-mail'}")
    return paths


def _paths(settings: Settings, extra: dict[str, str]) -> dict[str, str]:
    return {
        **extra,
        "landing": str(settings.landing_dir),
        "warehouse": str(settings.warehouse_path),
        "dagster home": str(settings.dagster_home),
    }


def cmd_demo(args: argparse.Namespace) -> int:
    from leadron.summary import format_summary, read_summary

    settings = get_settings()
    settings.ensure_dirs()
    started = time.perf_counter()
    input_dir = settings.home / "demo-input"
    args.out = str(input_dir)
    steps = (cmd_generate, cmd_import, cmd_run, cmd_train)
    for step in steps:
        if not hasattr(args, "dir"):
            args.dir = str(input_dir)
        code = step(args)
        if code:
            return code
    summary = read_summary(settings)
    mails = cmd_demo_mail(settings, summary.tenant)
    print(
        format_summary(
            summary,
            _paths(
                settings,
                {
                    "demo input": str(input_dir),
                    "published": str(settings.publish_dir),
                    **{f"e-mail {i}": str(p) for i, p in enumerate(mails, start=1)},
                },
            ),
        )
    )
    if summary.tenant:
        from leadron_cli.demo_api import show_api

        print("\n".join(show_api(settings, summary.tenant)))
    _stage(f"demo: done in {time.perf_counter() - started:.1f}s. `make dev` opens the Dagster UI on this warehouse.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from api_stub.server import serve

    serve(args.host, args.port, args.workers)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from leadron_cli.up import up

    return up(args.host, args.port, args.workers, args.dagster_port)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def _add_generate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=_positive, default=1_000_000, help="about how many events (default 1,000,000)")
    p.add_argument("--tenants", type=_positive, default=5, help="number of tenants, Zipf-sized (default 5)")
    p.add_argument("--seed", type=int, default=7, help="random seed; same seed and --end, same files (default 7)")
    p.add_argument("--end", type=_day, default=None, help="last day of data, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--days", type=_positive, default=365, help="days of history (default 365)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadron", description="Leadron Analytics: sales-engagement warehouse.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "generate",
        help="write a demo input folder",
        description="Write a deterministic demo dataset "
        "(events-*.jsonl plus the dimension CSV files) in the documented input format.",
    )
    p.add_argument("--out", required=True, help="folder to write")
    _add_generate_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "import",
        help="validate and land an input folder",
        description="Validate every input file in "
        "DIR and land it in the landing zone. A file with a bad line is rejected whole and reported "
        "as file:line: field: reason. Files already landed are skipped.",
    )
    p.add_argument(
        "dir",
        help="input folder (events*.jsonl[.gz], tenants.csv, teams.csv, users.csv, leads.csv, "
        "workflows.csv, workflow_steps.csv, messages.csv)",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "run",
        help="build the warehouse through Dagster",
        description="Materialize every asset (raw loads, dbt models and tests, publication) in-process with "
        "the build_warehouse job. With no option: the days of what landed since the last successful run "
        "(a killed or failed run's days included); --all: every landed day; --partition: one day.",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--partition", type=_day, default=None, help="only this event day (YYYY-MM-DD)")
    scope.add_argument("--all", action="store_true", help="every day with landed events")
    p.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the incremental models from all history, loading every landed day "
        "(after editing a dimension's history, e.g. a rep's past team or a lead's source)",
    )
    p.add_argument(
        "--full-tests",
        action="store_true",
        help="data tests read every row, as the scheduled daily build's do (else an incremental run's read the "
        "rows it wrote)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "train",
        help="train, check and promote a lead-score model",
        description="Run the "
        "train_lead_score_model job in-process: train a LightGBM candidate on ml.ml_lead_features, "
        "promote it only if it beats the production model and the baseline on the held-back "
        "period (a blocking asset check), then re-score every open lead.",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "demo",
        help="generate + import + run + train + summary",
        description="Generate a demo dataset into "
        "$LEADRON_HOME/demo-input, import it, build the warehouse, train and score leads, and print a summary.",
    )
    _add_generate_options(p)
    p.set_defaults(func=cmd_demo, partition=None, all=False, full_refresh=False, full_tests=False)  # what cmd_run reads

    p = sub.add_parser("serve", help="run the HTTP API", description="Run the HTTP API (uvicorn) on HOST:PORT.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="server processes, each on its own SO_REUSEPORT socket (default 1; one or two per CPU "
        "for ingestion at volume)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "up",
        help="run the API, the Dagster webserver and the Dagster daemon together",
        description="Start and supervise the long-lived processes: the API, the Dagster webserver and the Dagster "
        "daemon (sensors and schedules). SIGTERM stops them all cleanly.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="the API's port (default 8000)")
    p.add_argument("--workers", type=_positive, default=1, help="API server processes (default 1)")
    p.add_argument("--dagster-port", type=int, default=3000, help="the Dagster webserver's port (default 3000)")
    p.set_defaults(func=cmd_up)

    add_keys_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    os.umask(0o077)  # every file Leadron writes (keys, the API log, metadata, exports) is its owner's only
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
