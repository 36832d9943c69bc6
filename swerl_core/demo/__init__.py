"""The offline sample world: real git repositories plus a GitHub-compatible REST server on 127.0.0.1.

``build_world`` builds the sample repositories (``acme/textkit``, ``other/lib``); ``FakeGitHub`` serves
them to PyGithub; ``build_synthetic_repo``/``extend_synthetic_repo`` make large ones for benchmarks;
``build_learnable_world`` builds thousands of one-bug fixes a tiny model can learn from. The offline
models and fixture data the tests, benchmarks and ``swerl init-model`` start from live here too:
:mod:`.tiny_model` (a random-init Llama and its tokenizer), :mod:`.induction` (its copying warm-up),
:mod:`.sample_snapshot` and :mod:`.toy` (snapshots written without curate).
Nothing here reaches beyond the local machine. The demo is a leaf: only entry points (the CLI, the flows,
the stack), tests and benchmarks import it; the library never does.
"""

from swerl_core.demo.github_server import FakeGitHub, Fault, RequestRecord
from swerl_core.demo.learnable import LearnableWorld, build_learnable_world
from swerl_core.demo.synthetic import build_synthetic_repo, extend_synthetic_repo
from swerl_core.demo.world import EDGE_CASES, DemoError, RepoData, SampleWorld, World, build_world

__all__ = [
    "EDGE_CASES",
    "DemoError",
    "FakeGitHub",
    "Fault",
    "LearnableWorld",
    "RepoData",
    "RequestRecord",
    "SampleWorld",
    "World",
    "build_learnable_world",
    "build_synthetic_repo",
    "build_world",
    "extend_synthetic_repo",
]
