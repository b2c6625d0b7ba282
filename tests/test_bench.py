"""The AWS benchmark's arithmetic and report format (the benchmark itself runs in `make bench`, never as a
test: performance goals are not timing assertions)."""

from __future__ import annotations

import re

from eksflow_dev.bench_aws import Measurement, peak_rate, report, slope_and_overhead


def _measurement(job_seconds: float, worker_seconds: float, jobs: int = 10) -> Measurement:
    rss = {"train": (200 * 2**20, 140 * 2**20), "transform_partition": (170 * 2**20, 140 * 2**20)}
    return Measurement(job_seconds, 60.0, jobs, worker_seconds, 40, 4, rss, [0.0, 0.2, 0.4, 1.5])


def test_slope_is_extra_worker_seconds_per_job_per_extra_second_of_job_time():
    polling = slope_and_overhead(_measurement(10, 10 * (10 + 8)), _measurement(60, 10 * (60 + 8)))
    assert polling == (1.0, 8.0)
    deferred = slope_and_overhead(_measurement(10, 10 * 9), _measurement(60, 10 * 9.5))
    assert round(deferred[0], 3) == 0.01 and round(deferred[1], 1) == 8.9


def test_peak_rate_counts_calls_within_any_one_second():
    assert peak_rate([0.0, 0.2, 0.4, 1.5, 1.6, 1.7, 1.8]) == 4
    assert peak_rate([]) == 0


def test_report_ends_with_the_trackable_slope_line():
    pods = {
        "deferrable": [_measurement(1, 100), _measurement(10, 90), _measurement(60, 95)],
        "non-deferrable": [_measurement(1, 100), _measurement(10, 180), _measurement(60, 680)],
    }
    text = report(pods, [(10, _measurement(5, 50))], pool_slots=8)
    assert text.splitlines()[-1] == "pod-time slope: deferrable=0.010 non-deferrable=1.000"
    assert re.search(r"sagemaker-runner\s+200Mi\s+140Mi\s+442Mi\s+512Mi\s+768Mi  ok", text)
    assert re.search(r"ECS task\s+ours\s+30s = +2.0/min\s+provider default\s+6s = 10.0/min", text)


def test_fan_out_alone_reports_the_pool_as_the_ceiling_it_must_hold():
    held, ignored = _measurement(5, 50), _measurement(5, 50)
    held.peak_pool_occupied, ignored.peak_pool_occupied = 8, 0  # 0: the ECS steps never ran in the pool
    text = report({}, [(10, held), (200, ignored)], pool_slots=8)
    assert "pod-time" not in text and "task memory" not in text
    assert "pool ecs_runtask: 8 slots" in text
    assert re.search(r"^\s+10\s+60.0\s+4\s+8\s+3  ok$", text, re.MULTILINE)
    assert re.search(r"^\s+200 .*NOT HELD BY THE POOL$", text, re.MULTILINE)
