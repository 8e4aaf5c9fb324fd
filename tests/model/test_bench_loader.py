"""``mblip bench loader`` runs both layouts on the same rows and reports both speeds and their ratio."""

from model.bench_loader import bench_loader


def test_the_loader_benchmark_times_both_layouts(tmp_path):
    result = bench_loader(images=12, captions=2, batches=2, batch_size=4, work=tmp_path)
    assert result["image_folders_images_per_s"] > 0 and result["webdataset_images_per_s"] > 0
    assert result["ratio"] == result["webdataset_images_per_s"] / result["image_folders_images_per_s"]
