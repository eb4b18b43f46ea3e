"""The perftest report parser and error diagnosis against perftest's real output formats."""

from __future__ import annotations

import pytest

from ack_rdma_check.perftest import (
    GBITS_PER_MB,
    PerftestParams,
    ReportParseError,
    parse_bandwidth,
    parse_latency,
)
from ack_rdma_check.perftest_errors import Failure, diagnose
from tests.check_fixtures.fake_cluster import fixture

HEADER_MB = " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]"


def test_report_gbits_with_30_qps_over_roce() -> None:
    text = fixture("perftest/read_bw_client_roce_q30_gbits.txt")
    assert text.count("local address:") == 30  # one line per QP before the report
    report = parse_bandwidth(text)
    assert report.unit == "Gb"
    assert (report.message_bytes, report.iterations) == (65536, 30000)
    assert report.average_gbits == pytest.approx(46.05)
    assert report.peak_gbits == pytest.approx(46.12)
    assert report.average_mb_s == pytest.approx(46.05 / GBITS_PER_MB)
    assert report.msg_rate_mpps == pytest.approx(0.087834)


def test_mb_per_second_of_older_builds_are_mebibytes() -> None:
    report = parse_bandwidth(fixture("perftest/read_bw_client_ib_mb.txt"))
    assert report.unit == "MB"
    assert report.average_mb_s == pytest.approx(11708.31)
    assert report.average_gbits == pytest.approx(11708.31 * 2**20 * 8 / 1e9)
    assert report.peak_mb_s == pytest.approx(11709.18)


def test_mib_of_newer_builds_with_the_cpu_frequency_warning_between_header_and_row() -> None:
    text = fixture("perftest/read_bw_client_mib_cpufreq.txt")
    header, warning, row = text.split("\n")[-5:-2]
    assert "[MiB/sec]" in header and warning.startswith("Conflicting CPU frequency") and "\t" in row
    report = parse_bandwidth(text)
    assert report.unit == "MiB"
    assert report.average_mb_s == pytest.approx(5489.53)
    assert report.average_gbits == pytest.approx(46.05, abs=0.01)


def test_rdma_cm_report_of_an_iwarp_device() -> None:
    text = fixture("perftest/read_bw_client_erdma_rdma_cm_gbits.txt")
    assert "Data ex. method : rdma_cm" in text and "Transport type : IW" in text
    report = parse_bandwidth(text)
    assert report.average_gbits == pytest.approx(28.31)
    assert report.msg_rate_mpps == pytest.approx(0.053997)


def test_server_side_report_after_the_waiting_banner() -> None:
    text = fixture("perftest/read_bw_server_roce_q30_gbits.txt")
    assert "Waiting for client to connect" in text
    assert parse_bandwidth(text).average_gbits == pytest.approx(46.05)


def test_all_sizes_report_gives_the_largest_message() -> None:
    text = (
        " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]\n"
        " 2          40000           0.073563            0.073361            4.585037\n"
        " 512        40000            19.19              19.15              4.676292\n"
    )
    report = parse_bandwidth(text)
    assert report.message_bytes == 512
    assert report.average_gbits == pytest.approx(19.15)


def test_latency_report_with_percentiles() -> None:
    report = parse_latency(fixture("perftest/read_lat_client_roce.txt"))
    assert (report.message_bytes, report.iterations) == (2, 1000)
    assert (report.min_usec, report.max_usec, report.typical_usec) == (3.02, 7.81, 3.10)
    assert report.average_usec == pytest.approx(3.13)
    assert report.p99_usec == pytest.approx(3.58)


def test_latency_report_of_older_builds_without_average() -> None:
    report = parse_latency(fixture("perftest/read_lat_client_ib_old.txt"))
    assert report.typical_usec == pytest.approx(2.01)
    assert report.average_usec is None and report.p99_usec is None


def test_header_without_a_row_quotes_the_last_line() -> None:
    text = fixture("perftest/read_bw_client_mib_cpufreq.txt").split(" 65536")[0] + fixture(
        "perftest/err_cpufreq.txt"
    )
    with pytest.raises(ReportParseError) as caught:
        parse_bandwidth(text)
    assert caught.value.line == "Can't produce a report"


def test_output_without_a_report_quotes_its_last_line() -> None:
    with pytest.raises(ReportParseError) as caught:
        parse_bandwidth(fixture("perftest/err_connect_refused.txt"))
    assert "Unable to init the socket connection" in caught.value.line


def test_row_with_missing_columns_is_quoted() -> None:
    text = f"{HEADER_MB}\n 65536  1000  5512.40\n"
    with pytest.raises(ReportParseError) as caught:
        parse_bandwidth(text)
    assert caught.value.line == "65536  1000  5512.40"
    assert "'65536  1000  5512.40'" in str(caught.value)


def test_non_numeric_value_is_quoted() -> None:
    text = f"{HEADER_MB}\n 65536 1000 5512.40 n/a 0.08\n"
    with pytest.raises(ReportParseError, match="not a number"):
        parse_bandwidth(text)


@pytest.mark.parametrize(
    ("name", "failure", "retryable"),
    [
        ("err_connect_refused.txt", Failure.SERVER_UNREACHABLE, True),
        ("err_connect_refused_old.txt", Failure.SERVER_UNREACHABLE, True),
        ("err_cm_rejected.txt", Failure.CM_NOT_LISTENING, True),
        ("err_cm_addr_error.txt", Failure.CM_ADDRESS, False),
        ("err_cm_event_addr.txt", Failure.CM_ADDRESS, False),
        ("err_rtr.txt", Failure.QP_RTR, False),
        ("err_gid_types.txt", Failure.GID_TYPES, False),
        ("err_memlock.txt", Failure.MEMLOCK, False),
        ("err_cpufreq.txt", Failure.CPU_FREQUENCY, False),
        ("err_not_installed.txt", Failure.NOT_INSTALLED, False),
        ("err_no_device.txt", Failure.NO_DEVICE, False),
        ("err_device_not_found.txt", Failure.NO_DEVICE, False),
        ("err_transfer.txt", Failure.TRANSFER, False),
    ],
)
def test_error_outputs_are_diagnosed(name: str, failure: Failure, retryable: bool) -> None:
    diagnosis = diagnose(fixture(f"perftest/{name}"))
    assert diagnosis is not None
    assert (diagnosis.failure, diagnosis.retryable) == (failure, retryable)
    reason = diagnosis.reason("ib_read_bw client in pod rdma-test-1")
    assert "\n" not in reason
    assert repr(diagnosis.line) in reason  # the perftest line is quoted


def test_a_report_is_not_an_error() -> None:
    assert diagnose(fixture("perftest/read_bw_client_roce_q30_gbits.txt")) is None


@pytest.mark.parametrize(
    ("params", "address", "expected"),
    [
        (
            PerftestParams(device="mlx5_bond_0", gid_index=3),
            None,
            "ib_read_bw -q 30 -F --report_gbits -p 18515 -d mlx5_bond_0 -x 3",
        ),
        (
            PerftestParams(device="mlx5_bond_0", gid_index=3),
            "172.20.1.14",
            "ib_read_bw -q 30 -F --report_gbits -p 18515 -d mlx5_bond_0 -x 3 172.20.1.14",
        ),
        (
            PerftestParams(device="erdma_0", gid_index=0, rdma_cm=True),
            "192.168.5.30",
            "ib_read_bw -q 30 -F --report_gbits -p 18515 -d erdma_0 -R 192.168.5.30",
        ),
        (PerftestParams(qps=8, port=18600), None, "ib_read_bw -q 8 -F --report_gbits -p 18600"),
    ],
)
def test_command_lines(params: PerftestParams, address: str | None, expected: str) -> None:
    assert " ".join(params.bw_argv(address)) == expected


def test_latency_command_line_uses_one_qp() -> None:
    argv = PerftestParams(device="mlx5_bond_0", gid_index=3).lat_argv("172.20.1.14")
    assert argv == ["ib_read_lat", "-F", "-p", "18515", "-d", "mlx5_bond_0", "-x", "3", "172.20.1.14"]
