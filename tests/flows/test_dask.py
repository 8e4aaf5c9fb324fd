"""The same flow on a local Dask cluster of two worker processes gives the same output as the local
thread runner, and each worker loads its translator once."""

from flows.generate import generate, run_generate


def test_demo_on_two_dask_workers_matches_the_local_runner(tmp_path, demo_config, prefect_api, same_output,
                                                           set_output_aside):
    from distributed import Client, LocalCluster

    from pipeline.nllb.engine import _cached_translator

    on_dask = tmp_path / "dataset"
    generate(str(demo_config(name="local.yaml", min_bt_chrf=0.0, run={"concurrency": 2})))
    local = set_output_aside(on_dask, "local")  # the Dask run writes at the same path: the same bytes

    config = demo_config(name="dask.yaml", min_bt_chrf=0.0, run={"concurrency": 2})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        manifest = run_generate(str(config), dask_address=cluster.scheduler_address)
        with Client(cluster) as client:
            # The bound method pickles by reference: each worker answers for its own per-process cache.
            loads = {w: info[1] for w, info in client.run(_cached_translator.cache_info).items()}  # (hits, misses, ...)

    assert manifest["run"]["chunks"]["process"] == 5
    same_output(on_dask, local, work_differs=True)  # workers race for the same cache entries
    assert manifest["totals"]["kept"] == 96  # threshold 0: every row kept, so every language has shards
    assert len(loads) == 2 and all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1
