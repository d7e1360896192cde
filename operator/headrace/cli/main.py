"""Entry point of the `headrace` command."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from headrace import __version__, settings
from headrace.cli.errors import report
from headrace.cli.output import FORMATS
from headrace.pod_protocol import ENTRY_COMMAND


class _Version(argparse.Action):
    """`--version`, with the engine's build: asked only then, so other commands do not load
    the engine to build their parser."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="print the version and the engine's build, and exit"
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from headrace.engine.build import engine_build

        print(f"headrace {__version__} (engine: {engine_build()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headrace", description="Run Python flows locally or on Kubernetes."
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run a flow locally with a progress bar, or a Deployment on the cluster"
    )
    run.add_argument("entrypoint", nargs="?", help="FILE.py:FLOW or package.module:FLOW")
    run.add_argument(
        "--deployment", help="create a FlowRun of this Deployment (KUBECONFIG) and follow it"
    )
    run.add_argument("-n", "--namespace", help="with --deployment: the namespace")
    run.add_argument("--no-wait", action="store_true", help="with --deployment: do not follow")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a flow parameter; VALUE is parsed as JSON when it can be",
    )
    run.add_argument("--params-json", help="all parameters as one JSON object")
    run.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    run.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        help="print the run (a FlowRun with --deployment) as JSON or YAML on stdout",
    )

    listing = commands.add_parser(
        "list", help="list local runs, or FlowRuns on the cluster (--cluster, -n, -A)"
    )
    listing.add_argument(
        "--cluster", action="store_true", help="FlowRuns on the cluster of KUBECONFIG"
    )
    listing.add_argument("-n", "--namespace", help="FlowRuns of this namespace (implies --cluster)")
    listing.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="FlowRuns of every namespace (implies --cluster)",
    )
    listing.add_argument("--limit", type=int, default=50, help="at most this many local runs")
    listing.add_argument("-o", "--output", choices=FORMATS, help="JSON or YAML on stdout")

    deploy = commands.add_parser(
        "deploy", help="write a Deployment manifest for a flow (GitOps), or apply it"
    )
    deploy.add_argument("entrypoint", help="FILE.py:FLOW or package.module:FLOW")
    deploy.add_argument("--name", required=True, help="the Deployment's name")
    deploy.add_argument("--image", required=True, help="the image holding the flow code")
    deploy.add_argument("--path-in-image", help="where FILE.py is in the image (/opt/flows/...)")
    deploy.add_argument("--version", help="shown to the flow as runtime.deployment.version")
    deploy.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    deploy.add_argument("--cron", help="a cron schedule, e.g. '0 3 * * *'")
    deploy.add_argument("--timezone", help="IANA timezone of --cron (default UTC)")
    deploy.add_argument("--interval", type=int, help="run every this many seconds")
    deploy.add_argument("--timeout", type=int, help="timeoutSeconds of each run")
    deploy.add_argument("-n", "--namespace")
    deploy.add_argument(
        "--apply", action="store_true", help="create or update it on the cluster of KUBECONFIG"
    )

    run_help = (
        "flowrun/NAME (a FlowRun on the cluster of KUBECONFIG), or a local run's id, "
        "id prefix or name, or a record.jsonl path/URL"
    )
    logs = commands.add_parser(
        "logs", help="show a run's logs from its run record (and its pods, for a FlowRun)"
    )
    logs.add_argument("run", help=run_help)
    logs.add_argument("-n", "--namespace", help="the FlowRun's namespace (default: context's)")
    logs.add_argument("--reverse", action="store_true", help="newest lines first")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the run ends"
    )
    logs.add_argument("--task", help="only lines of task runs whose name starts with this")
    logs.add_argument("--limit", type=int, help="at most this many lines")

    artifacts = commands.add_parser(
        "artifacts", help="list a run's artifacts (markdown, tables, links), or show one"
    )
    artifacts.add_argument("run", help=run_help)
    artifacts.add_argument("-n", "--namespace", help="the FlowRun's namespace (default: context's)")
    artifacts.add_argument(
        "--show", metavar="KEY", help="print the newest artifact with this key (or id prefix)"
    )

    graph = commands.add_parser(
        "graph", help="show a run's task runs by dependency stage, and what pending ones wait on"
    )
    graph.add_argument("run", help=run_help)
    graph.add_argument("-n", "--namespace", help="the FlowRun's namespace (default: context's)")
    graph.add_argument(
        "--pending", type=int, default=20, help="list at most this many pending task runs"
    )

    ui = commands.add_parser("ui", help="serve the web UI (FlowRuns of KUBECONFIG, local runs)")
    ui.add_argument("--port", type=int, default=8420, help="0 picks a free port")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("-n", "--namespace", help="show only this namespace's FlowRuns")
    ui.add_argument(
        "--auth",
        choices=["none", "kubernetes"],
        default="none",
        help="kubernetes: each request needs the caller's bearer token (TokenReview), and "
        "shows only namespaces it may list FlowRuns in (SubjectAccessReview)",
    )

    operator = commands.add_parser("operator", help="run the Kubernetes operator")
    operator.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all",
    )
    operator.add_argument(
        "--liveness", help="serve liveness at this URL, e.g. http://0.0.0.0:8080/healthz"
    )
    operator.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (default: $HEADRACE_METRICS_PORT, else off)",
    )
    operator.add_argument("-v", "--verbose", action="store_true")

    # The flow pod's entry (headrace.pod_protocol): not listed, not for people.
    pod = commands.add_parser(ENTRY_COMMAND)
    pod.add_argument("entrypoint")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings.check()  # a variable that does not parse stops every command, named
        if args.command == "run":
            from headrace.cli.run import gather_parameters, run_entrypoint

            parameters = gather_parameters(args.param, args.params_json)
            if args.deployment:
                from headrace.cli.remote import run_deployment

                return run_deployment(
                    args.deployment, parameters, args.namespace, not args.no_wait, args.output
                )
            if not args.entrypoint:
                raise ValueError("give an entrypoint FILE.py:FLOW, or --deployment NAME")
            return run_entrypoint(args.entrypoint, parameters, not args.no_progress, args.output)
        if args.command == "list":
            from headrace.cli.listing import list_cluster, list_local

            if args.cluster or args.namespace or args.all_namespaces:
                return list_cluster(args.namespace, args.all_namespaces, args.output)
            return list_local(args.limit, args.output)
        if args.command == "deploy":
            from headrace.cli.deploy import build_manifest, deploy
            from headrace.cli.params import parse_pairs

            manifest = build_manifest(
                args.entrypoint,
                args.name,
                args.image,
                args.namespace,
                args.path_in_image,
                args.version,
                parse_pairs(args.param),
                args.cron,
                args.timezone,
                args.interval,
                args.timeout,
            )
            return deploy(manifest, args.apply, args.namespace)
        if args.command == "logs":
            from headrace.cli.logs import show_logs

            return show_logs(
                args.run, args.reverse, args.follow, args.task, args.limit, args.namespace
            )
        if args.command == "artifacts":
            from headrace.cli.artifacts import show_artifacts

            return show_artifacts(args.run, args.namespace, args.show)
        if args.command == "graph":
            from headrace.cli.graph import show_graph

            return show_graph(args.run, args.namespace, args.pending)
        if args.command == "ui":
            from headrace.ui.server import run_ui

            return run_ui(args.host, args.port, args.namespace, args.auth)
        if args.command == "operator":
            from headrace.controller.main import run_operator

            return run_operator(args.namespace, args.liveness, args.verbose, args.metrics_port)
        if args.command == ENTRY_COMMAND:
            from headrace.cli.pod import run_in_pod

            return run_in_pod(args.entrypoint)
    except (Exception, KeyboardInterrupt) as error:
        return report(args.command, error)
    return 2


if __name__ == "__main__":
    sys.exit(main())
