import io

from benchmarks.tac import main


def test_tac_benchmark_prints_a_table_for_both_algorithms() -> None:
    out = io.StringIO()
    assert main(["--seconds", "0.06"], out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("TAC verification vs. raw block cipher (cryptography ")
    assert lines[1].split()[:5] == ["alg", "center", "verify/s", "TAC", "verify/s"]
    assert [line.split()[0] for line in lines[2:4]] == ["3des", "sm4"]
    assert lines[4].startswith("center verify = derive")
