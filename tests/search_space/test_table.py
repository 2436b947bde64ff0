"""subnet_table: the shared columns of every subnet dataset."""

from ofa_latency_kedro.search_space import Arch, get_space, subnet_stats, subnet_table


def test_subnet_table_rows_match_the_single_subnet_views():
    batch = get_space("compofa-elastic", width_mult=1.2).sample_batch(12, seed=0)
    table = subnet_table(batch)
    assert list(table.columns) == [
        "child_arch",
        "canonical_key",
        "resolution",
        "width_mult",
        "params",
        "macs",
    ]
    for row, arch in zip(table.itertuples(), batch.to_archs(), strict=True):
        assert Arch.parse(row.child_arch, width_mult=row.width_mult) == arch
        assert row.canonical_key == arch.canonical_key
        stats = subnet_stats(arch)
        assert (row.params, row.macs) == (stats["params"], stats["macs"])
