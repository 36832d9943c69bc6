"""The ``swerl demo`` verb: the whole pipeline on the offline sample world, or (``demo serve``) just its server.

``swerl demo`` narrates every stage end to end; ``swerl demo serve`` builds the sample world under
``$SWERL_HOME/demo-world`` and serves it over a GitHub-compatible API on 127.0.0.1 until stopped, so the
pipeline can be followed by hand, verb by verb, without a network or a real token.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from swerl_core.cli.arguments import add_verb
from swerl_core.config import Settings


def register_demo(verbs: Any) -> None:
    """Add ``swerl demo`` (and ``swerl demo serve``) to the CLI."""
    parser = add_verb(
        verbs,
        "demo",
        run_demo,
        help="run every stage offline on the sample world (or `demo serve`: serve it for by-hand runs)",
        description=(
            "Run the offline demo: the SWE-RL prompt and reward on a worked example, then ingest, curate, "
            "train, evaluate and register on the sample world. `swerl demo serve` only serves the sample "
            "world's GitHub-compatible API, for running the verbs by hand."
        ),
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        metavar="RECIPE",
        help="training recipe for the demo's tiny model: a file or a shipped recipe's name (default: demo-cpu)",
    )
    actions = parser.add_subparsers(dest="demo_action", metavar="[serve]")
    serve = actions.add_parser(
        "serve",
        help="serve the sample world on 127.0.0.1 until Ctrl-C (or SIGTERM)",
        description="Serve the sample world's repositories over a GitHub-compatible API on 127.0.0.1.",
    )
    serve.set_defaults(command=run_demo_serve)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the whole demo, narrating each stage on stdout."""
    from swerl_core.demo.walkthrough import RECIPE
    from swerl_core.demo.walkthrough import run_demo as walk_through

    walk_through(settings, out=sys.stdout, recipe=args.recipe or RECIPE)
    return 0


def run_demo_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the sample world until interrupted; prints the API URL, the repositories and how to ingest them."""
    from swerl_core.demo.github_server import FakeGitHub
    from swerl_core.demo.walkthrough import DEMO_TOKEN
    from swerl_core.demo.world import build_world

    world = build_world(settings.home / "demo-world")
    repos = " ".join(f"--repo {name}" for name in world.repos)
    with FakeGitHub(world, token=DEMO_TOKEN) as server:
        print(f"Serving the sample world ({', '.join(world.repos)}) at {server.url}; Ctrl-C or kill stops it.")
        print("Point swerl at it (in this shell when it runs in the background, else in another):")
        print(f"  export SWERL_GITHUB_API_URL={server.url} SWERL_GITHUB__LOCAL_CLONES=true GITHUB_TOKEN={DEMO_TOKEN}")
        print(f"  swerl ingest {repos}")
        sys.stdout.flush()
        server.serve_until_signalled()  # `kill` stops it as cleanly as Ctrl-C
    return 0
