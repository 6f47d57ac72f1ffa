"""The compile report's tensorization keys."""

from __future__ import annotations

import dataclasses

from tinyc.target import resolve_device
from tinyc.tensorize.report import left_out_sets, tensorize_entry


def test_sets_the_cpu_lacks_are_reported_as_feature_missing():
    host = resolve_device("x86")  # features: host
    old_cpu = dataclasses.replace(host.cpu, features="+avx,+avx2,+fma")
    device = dataclasses.replace(host, cpu=old_cpu, intrinsics=tuple(
        s for s in host.intrinsics if s.name == "avx2_fma"))
    left = dict(left_out_sets(device))
    assert left["avx512_fma"] == "feature missing: needs +avx512f"
    assert left["avx512_vnni"].startswith("feature missing: needs +avx512f, +avx512bw")
    assert "avx2_fma" not in left


def test_only_nodes_the_tensorizer_looked_at_list_rejections():
    left = (("avx512_vnni", "feature missing: needs +avx512vnni"),)
    conv = tensorize_entry("avx2_fma.fma_f32_1x8", (("x.y", "dtype: ..."),), left)
    assert conv == {"intrinsic": "avx2_fma.fma_f32_1x8",
                    "rejected": [["x.y", "dtype: ..."],
                                 ["avx512_vnni", "feature missing: needs +avx512vnni"]]}
    assert tensorize_entry("", (), left) == {"intrinsic": "", "rejected": []}
