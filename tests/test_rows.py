"""Rows: tables pivot the records, titles come from one table."""

from __future__ import annotations

from cases import STAGE_ROWS

from dsconv_cli.present import rows


def test_metric_table_pivots_rows_into_columns() -> None:
    headers, body = rows.metric_table(STAGE_ROWS)
    assert headers == ["", "standard", "depthwise", "pointwise", "separable"]
    assert body[0] == ["params", "24", "6", "8", "14"]
    assert body[1] == ["MACs", "96", "24", "32", "56"]
    by_label = {row[0]: row[1:] for row in body}
    assert by_label["latency ms"] == ["0.500 ±0.010", "-", "-", "0.250 ±0.010"]
    assert by_label["CV"] == ["2.0%", "-", "-", "2.0%"]
    assert by_label["roof reached"] == ["25.0% memory", "-", "-", "25.0% memory"]
    assert by_label["min traffic"] == ["192 B", "120 B", "128 B", "152 B"]  # 4*params + 96
    assert by_label["weights"] == ["96 B", "24 B", "32 B", "56 B"]  # 4*params
    assert by_label["allocator peak"] == ["2.0 KiB", "-", "-", "2.0 KiB"]
    # column sums equal totals
    assert int(body[0][2]) + int(body[0][3]) == int(body[0][4])


def test_every_table_title_comes_from_the_titles_table() -> None:
    """Each builder's headers are titles of TITLES (or sweep keys), never spelled inline."""
    from dsconv_cli.core import config
    from dsconv_cli.core.evaluate import count_config, evaluate

    cfg = config.parse("input_shape: [1, 3, 8, 8]\nlayers: [{out_channels: 4}, {kind: global_avg_pool}]\n"
                       "budgets: {standard: {params: 10}}\n", "c.yaml")  # fmt: skip
    (stack,) = count_config(cfg)
    report = evaluate(cfg, [stack])
    known = set(rows.TITLES.values())
    tables = [
        rows.layer_table(stack),
        rows.sweep_table([stack], []),
        rows.budget_table(report.budgets),
        rows.metric_table(STAGE_ROWS),
    ]
    for headers, body in tables:
        assert set(headers) - {""} <= known
        assert all(len(row) == len(headers) for row in body)
    metric_labels = {row[0] for row in rows.metric_table(STAGE_ROWS)[1]}
    assert metric_labels <= known


def test_titles_fails_loudly_on_an_unknown_key() -> None:
    import pytest

    with pytest.raises(KeyError):
        rows.titles("no such column")


def test_layer_table_total_row_sums_the_layers() -> None:
    from dsconv_cli.core import config
    from dsconv_cli.core.evaluate import count_config

    cfg = config.parse("input_shape: [1, 3, 16, 16]\nlayers: [{out_channels: 8}, {out_channels: 16, stride: 2}]\n",
                       "c.yaml")  # fmt: skip
    (stack,) = count_config(cfg)
    headers, body = rows.layer_table(stack)
    *layers, total = body
    for title in ("std params", "sep params", "std MACs", "sep MACs"):
        i = headers.index(title)
        assert sum(int(r[i].replace(",", "")) for r in layers) == int(total[i].replace(",", ""))
    share = headers.index("sep MAC%")
    assert abs(sum(float(r[share]) for r in layers) - 100.0) < 0.11
