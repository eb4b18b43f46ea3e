"""``ack-rdma-check``: an ib_read_bw test between two RDMA nodes of the stack's cluster, with a verdict.

Exit codes: 0 the average bandwidth meets the expectation, 1 it does not, 2 the check could not measure
(bad input, pod pending, no RDMA device, port down, server unreachable, unreadable report).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn, TextIO

from rich.console import Console

from ack_rdma_check import inputs
from ack_rdma_check.errors import SetupError, UsageError
from ack_rdma_check.input_files import echo, shorten
from ack_rdma_check.report import RichProgress, print_summary, published_gbits, to_json
from ack_rdma_check.steps.orchestrate import EXIT_SETUP, CheckOptions, run_check
from ack_rdma_check.steps.perf import RunTiming
from ack_rdma_check.transport import Cluster, Kubeconfig

Connect = Callable[[Kubeconfig], Cluster]


def connect_with_kubernetes_client(kubeconfig: Kubeconfig) -> Cluster:
    # Imported here: the Kubernetes client takes seconds to import, and bad input never needs it.
    from ack_rdma_check import kube  # noqa: PLC0415

    return kube.connect(kubeconfig)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse quotes the offending arguments whole (all unrecognized ones in one message).
        message = shorten(message, 240)
        raise UsageError(f"{message[0].upper()}{message[1:]}. See ack-rdma-check --help.")


def _positive(unit: str, example: str, limit: float, why: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(
                f"expected a positive number of {unit} such as {example}, got {echo(text)}"
            )
        if value > limit:
            raise argparse.ArgumentTypeError(f"{echo(text)} {unit} is more than {limit:g} ({why})")
        return value

    return parse


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _namespace(text: str) -> str:
    if not _NAMESPACE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{echo(text)} is not a namespace name (lower-case letters, digits and '-', at most 63)"
        )
    return text


def _name(what: str, limit: int, *, spaces: bool = False) -> Callable[[str], str]:
    """A name passed on to the API server or the pods' commands: printable ASCII (one word unless
    ``spaces``: set-based label selectors have them), of a bounded length."""
    shape = "printable ASCII" if spaces else "one word of printable ASCII"

    def parse(text: str) -> str:
        if (
            not 0 < len(text) <= limit
            or not (text.isascii() and text.isprintable())
            or (" " in text and not spaces)
        ):
            raise argparse.ArgumentTypeError(
                f"{echo(text)} is not {what} ({shape}, at most {limit} characters)"
            )
        return text

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ack-rdma-check",
        description="Run ib_read_bw between the two RDMA test pods of an ack-rdma stack; judge bandwidth.",
        epilog="Exit codes: 0 bandwidth meets --min-gbits, 1 below it, 2 setup or input error.",
    )
    source = parser.add_argument_group("cluster and stack")
    source.add_argument(
        "--kubeconfig", help="kubeconfig file (default: the stack's kubeconfig output, or KUBECONFIG)"
    )
    stack = source.add_mutually_exclusive_group()
    stack.add_argument("--outputs", metavar="FILE", help=f"stack outputs saved with `{inputs.SAVE_OUTPUTS}`")
    stack.add_argument("--stack", metavar="NAME", help="read the outputs of this stack with the pulumi CLI")
    pods = parser.add_argument_group("test pods")
    pods.add_argument(
        "--namespace",
        type=_namespace,
        help="namespace of the test pods (default: the testPods output, else rdma-test)",
    )
    pods.add_argument(
        "--selector",
        type=_name("a label selector", 1024, spaces=True),
        help="label selector picking two pods instead of the testPods output",
    )
    pods.add_argument(
        "--create",
        action="store_true",
        help="create the test pods (and their namespace) if missing; delete them after",
    )
    pods.add_argument(
        "--image",
        type=_name("an image reference", 1024),
        help="image for --create (default: the image in the testPodManifest output)",
    )
    run = parser.add_argument_group("measurement")
    run.add_argument(
        "--rdma-cm", action="store_true", help="connect through RDMA_CM (host-network pods, bond0)"
    )
    run.add_argument(
        "--min-gbits",
        type=_positive("Gbit/s", "44", 800, "the fastest RDMA port, ConnectX-8, runs at 800 Gbit/s"),
        help=f"expected average Gbit/s (default: checkMinGbits output, else {inputs.DEFAULT_MIN_GBITS:g})",
    )
    run.add_argument("--latency", action="store_true", help="also run ib_read_lat")
    run.add_argument(
        "--device",
        type=_name("an RDMA device name", 63),  # IB_DEVICE_NAME_MAX is 64 with the NUL
        help="RDMA device to use (default: the first with an active port)",
    )
    run.add_argument(
        "--netdev",
        type=_name("a network interface name", 15),  # IFNAMSIZ is 16 with the NUL
        help="netdev whose RoCE v2 GID to use (default: a bond, else the first)",
    )
    run.add_argument(
        "--pod-timeout",
        type=_positive("seconds", "300", 86400, "a day"),
        default=300.0,
        help="seconds to wait for the pods to run (300)",
    )
    run.add_argument(
        "--connect-timeout",
        type=_positive("seconds", "30", 3600, "an hour"),
        default=30.0,
        help="seconds the client retries while the server does not listen yet (30)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")
    return parser


def run(
    argv: Sequence[str],
    environ: Mapping[str, str],
    connect: Connect = connect_with_kubernetes_client,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        elsewhere = args.kubeconfig is not None or bool(environ.get("KUBECONFIG"))
        outputs = inputs.load_outputs(args.outputs, args.stack, kubeconfig_elsewhere=elsewhere)
        kubeconfig = inputs.resolve_kubeconfig(args.kubeconfig, outputs, environ)
        choice = inputs.PodChoice(args.namespace, args.selector, args.create, args.image, args.rdma_cm)
        target = inputs.resolve_target(choice, outputs)
        options = CheckOptions(
            min_gbits=inputs.resolve_min_gbits(args.min_gbits, outputs),
            resource_name=inputs.resource_name(outputs),
            rdma_cm=args.rdma_cm,
            latency=args.latency,
            device=args.device,
            netdev=args.netdev,
            pod_timeout=args.pod_timeout,
            timing=RunTiming(connect_timeout=args.connect_timeout),
        )
        published = published_gbits(outputs)
        cluster = connect(kubeconfig)
    except UsageError as error:
        print(f"ack-rdma-check: {error}", file=err)
        return EXIT_SETUP
    except SetupError as error:  # the API server unreachable, or refusing the credentials: before any step
        print(f"ack-rdma-check: {error.reason}", file=err)
        return EXIT_SETUP
    result = run_check(cluster, target, options, RichProgress(Console(file=err)))
    if args.json:
        print(json.dumps(to_json(result, published), indent=2), file=out)
    else:
        print_summary(result, Console(file=out), published)
    return result.verdict.exit_code


EXIT_INTERRUPTED = 130


def main() -> int:
    try:
        return run(sys.argv[1:], os.environ)
    except KeyboardInterrupt:
        # The server was stopped and created objects deleted on the way out (finally blocks).
        print("ack-rdma-check: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
