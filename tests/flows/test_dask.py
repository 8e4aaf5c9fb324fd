"""The same flow on a local Dask cluster of two worker processes gives the same output as the local
thread runner, and each worker loads its translator once."""

from flows.generate import generate, run_generate


def test_demo_on_two_dask_workers_matches_the_local_runner(tmp_path, demo_config, prefect_api, output_digest):
    from distributed import Client, LocalCluster

    from pipeline.nllb.engine import _cached_translator

    local = tmp_path / "local"
    generate(str(demo_config(name="local.yaml", min_bt_chrf=0.0, output={"dir": str(local)})))

    on_dask = tmp_path / "dask"
    config = demo_config(name="dask.yaml", min_bt_chrf=0.0, output={"dir": str(on_dask)}, run={"concurrency": 2})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        manifest = run_generate(str(config), dask_address=cluster.scheduler_address)
        with Client(cluster) as client:
            # The bound method pickles by reference: each worker answers for its own per-process cache.
            loads = {w: info[1] for w, info in client.run(_cached_translator.cache_info).items()}  # (hits, misses, ...)

    assert manifest["run"]["chunks"]["process"] == 5
    assert output_digest(on_dask) == output_digest(local)
    assert manifest["totals"]["kept"] == 96  # threshold 0: every row kept, so every language has shards
    assert len(loads) == 2 and all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1
