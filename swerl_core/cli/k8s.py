"""The ``swerl render-k8s`` verb: a recipe and a node count in, Kubernetes manifests for one GRPO run out.

Registered into :mod:`swerl_core.cli` after the pipeline verbs. Writes one YAML file per object (apply
with ``kubectl apply -f DIR``) and prints the files and the torchrun command every training pod runs.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from swerl_core.cli.arguments import add_verb
from swerl_core.config import Settings


def register_render_k8s(verbs: Any) -> None:
    """Add ``swerl render-k8s`` to the CLI."""
    parser = add_verb(
        verbs,
        "render-k8s",
        run_render_k8s,
        help="render the Kubernetes manifests of a multi-node GRPO run from a recipe",
        description=(
            "Render an indexed training Job (torchrun, c10d rendezvous), its headless Service, the recipe "
            "ConfigMap, the shared SWERL_HOME claim and the vLLM rollout Deployment + Service. Sizes come "
            "from the recipe; world_size becomes nodes × GPUs per node. See docs/scale-out.md."
        ),
    )
    parser.add_argument(
        "--recipe", type=Path, required=True, metavar="RECIPE", help="a shipped recipe's name or a recipe file"
    )
    parser.add_argument("--nodes", type=int, required=True, metavar="N", help="training nodes")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the manifests")
    parser.add_argument("--gpus-per-node", type=int, default=8, metavar="G", help="GPUs per node")
    parser.add_argument(
        "--run-name", metavar="NAME", help="Job name and rendezvous id (default: the recipe's name and -grpo)"
    )
    parser.add_argument("--snapshot", metavar="ID", help="snapshot id (default: the recipe's)")
    parser.add_argument("--namespace", default="swerl", help="Kubernetes namespace")
    parser.add_argument(
        "--trainer-image", default="swerl-trainer:0.1.0", metavar="IMAGE", help="image of the training pods"
    )
    parser.add_argument(
        "--rollout-image", default="swerl-rollout:0.1.0", metavar="IMAGE", help="image of the vLLM rollout servers"
    )
    parser.add_argument("--storage-class", metavar="CLASS", help="ReadWriteMany storage class for SWERL_HOME")
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")


def run_render_k8s(args: argparse.Namespace, settings: Settings) -> int:
    """Render the manifests into ``args.out`` and print what was written."""
    from swerl_core.k8s import write_manifests
    from swerl_core.train.config import load_train_config
    from swerl_core.train.k8s import ClusterLayout, render_training, torchrun_command
    from swerl_core.train.k8s.layout import cluster_recipe

    cfg = load_train_config(args.recipe)
    layout = ClusterLayout(
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        run_name=args.run_name or f"{cfg.name}-grpo".lower().replace("_", "-").replace(".", "-"),
        snapshot_id=args.snapshot,
        namespace=args.namespace,
        trainer_image=args.trainer_image,
        rollout_image=args.rollout_image,
        home_storage_class=args.storage_class,
        resume=args.resume,
    )
    paths = write_manifests(render_training(cfg, layout), args.out)
    for path in paths:
        print(path)
    command = torchrun_command(cluster_recipe(cfg, layout), layout)
    print(f"world size {layout.world_size} = {layout.nodes} node(s) × {layout.gpus_per_node} GPUs; each pod runs:")
    print(shlex.join(command))
    return 0
