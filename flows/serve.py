"""Serve the deployments of ``prefect.yaml`` from this process (no work pool or worker needed).

    prefect server start                       # in another shell; export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m flows.serve                      # every deployment, with its schedule
    python -m flows.serve nightly              # only some (deployment names)

Runs triggered from the UI, the API or a schedule execute here, each in a subprocess.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PREFECT_YAML = REPO / "prefect.yaml"


def load_deployment_specs(path: str | Path = PREFECT_YAML) -> list[dict]:
    """The ``deployments`` entries of a prefect.yaml."""
    return list((yaml.safe_load(Path(path).read_text()) or {}).get("deployments") or [])


def to_runner_deployment(spec: dict, root: Path = REPO):
    """A ``RunnerDeployment`` for ``flow.serve``: same entrypoint, parameters, schedules and limits."""
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(root / spec["entrypoint"]))
    crons = [s["cron"] for s in spec.get("schedules") or [] if s.get("cron") and s.get("active", True)]
    return flow.to_deployment(
        name=spec["name"], cron=crons or None, parameters=spec.get("parameters") or {},
        description=spec.get("description"), tags=spec.get("tags"), concurrency_limit=spec.get("concurrency_limit"),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="deployment names to serve (default: all)")
    parser.add_argument("--prefect-yaml", default=str(PREFECT_YAML))
    args = parser.parse_args(argv)
    from prefect import serve

    specs = load_deployment_specs(args.prefect_yaml)
    deployments = []
    for spec in specs:
        if not args.names or spec["name"] in args.names:
            deployments.append(to_runner_deployment(spec))
    if not deployments:
        raise SystemExit(f"nothing to serve: no deployment of {args.prefect_yaml} matches {args.names}")
    serve(*deployments)


if __name__ == "__main__":
    main()
