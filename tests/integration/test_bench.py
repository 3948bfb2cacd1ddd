#!/usr/bin/python3
"""keel-bench against a real `keeld --dev` on loopback: a short run of each
scenario CI can afford, asserting zero errors and the JSON report's fields,
never speed (the machine is shared).

Run one test:  test_bench.py BenchTest.test_get_json
Environment:   KEEL_KEELD, KEEL_BENCH (set by CTest).
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import kmipwire as kw
from procwatch import MEMCHECK, Process
from test_dev import Keeld, client_ctx

KEELD = os.environ.get("KEEL_KEELD", "")
BENCH = os.environ.get("KEEL_BENCH", "")
RUN_GUARD = 120  # seconds: fails a stuck run, not a slow one
FIELDS = ("ops_per_sec", "errors", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "ops",
          "elapsed_s", "errors_by_reason")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def sanitized_or_valgrind(pid):
    """A sanitizer's shadow memory (a mapping over 1 TiB) or valgrind."""
    if MEMCHECK:
        return True
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if end - start > 1 << 40:
                return True
    return False


@unittest.skipUnless(KEELD and BENCH, "KEEL_KEELD and KEEL_BENCH not set")
class BenchTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="keel-bench-test-")
        self.keeld = Keeld(os.path.join(self.dir, "dev")).ready()

    def tearDown(self):
        self.keeld.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def bench(self, *args, target=None):
        certs = os.path.join(self.dir, "dev", "certs")
        cmd = [BENCH, *args, "--target", "127.0.0.1:%d" % (target or self.keeld.port),
               "--ca", os.path.join(certs, "ca.crt"), "--cert", os.path.join(certs, "client.crt"),
               "--key", os.path.join(certs, "client.key")]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_GUARD)

    def bench_json(self, *args, target=None):
        r = self.bench(*args, "--json", target=target)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        report = json.loads(r.stdout)
        for field in FIELDS:
            self.assertIn(field, report)
        self.assertEqual(report["errors"], 0, report)
        self.assertEqual(report["errors_by_reason"], {})
        return report

    def test_get_json(self):
        report = self.bench_json("get", "--count", "200", "--concurrency", "4")
        self.assertEqual(report["ops"], 200)
        self.assertEqual(report["handshakes"], 4)

    def test_vcenter_task(self):
        report = self.bench_json("vcenter-task", "--count", "50")
        self.assertEqual(report["ops"], 50)
        self.assertEqual(report["handshakes"], 50)
        # Where a task's time went: each part timed, and the parts add up
        # to a task's mean latency, so none is counted twice.
        phases = report["phases_mean_ms"]
        self.assertEqual(sorted(phases), ["close", "connect", "discover_versions", "get",
                                          "get_attributes"])
        for name, ms in phases.items():
            self.assertGreater(ms, 0, name)
        self.assertLessEqual(sum(phases.values()), report["max_ms"])
        self.assertNotIn("phases_mean_ms", self.bench_json("get", "--count", "10"))

    def test_vcenter_task_text_report(self):
        r = self.bench("vcenter-task", "--count", "10", "--tls", "1.2", "--no-resumption")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("errors     0", r.stdout)
        self.assertIn("(0 resumed)", r.stdout)
        self.assertRegex(r.stdout, r"mean ms +connect [0-9.]+ +discover_versions [0-9.]+ +get "
                         r"[0-9.]+ +get_attributes [0-9.]+ +close [0-9.]+")

    def test_other_scenarios(self):
        for args in (("create", "--count", "20", "--concurrency", "2"),
                     ("mixed", "--count", "40", "--ratio", "1:1"),
                     ("locate", "--count", "20", "--objects", "10", "--kmip-version", "2.0"),
                     ("boot-storm", "--hosts", "8", "--keys", "2"),
                     ("idle", "--concurrency", "4", "--duration", "0.1")):
            with self.subTest(args=args):
                self.bench_json(*args)

    def stored_names(self, prefix):
        """The Names in keeld's store that begin with |prefix|-."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.dir, "dev/data/keel.db"),
                             uri=True)
        try:
            rows = db.execute("SELECT text_value FROM attributes WHERE name = 'Name'"
                              " AND substr(text_value, 1, ?) = ?",
                              (len(prefix) + 1, prefix + "-")).fetchall()
        finally:
            db.close()
        return sorted(r[0] for r in rows)

    def test_locate_objects_and_names(self):
        """locate makes each of its --objects once, over several connections,
        and reports their prefix; --names locates among those of an earlier
        run and makes none; names that do not exist are unexpected answers."""
        made = self.bench_json("locate", "--count", "1", "--objects", "37")
        prefix = made["name_prefix"]
        want = sorted("%s-%d" % (prefix, i) for i in range(37))
        self.assertEqual(self.stored_names(prefix), want)
        again = self.bench_json("locate", "--count", "200", "--objects", "37", "--names", prefix)
        self.assertEqual(again["name_prefix"], prefix)
        self.assertEqual(again["ops"], 200)
        self.assertEqual(self.stored_names(prefix), want)
        r = self.bench("locate", "--count", "5", "--objects", "3", "--names", prefix + "-x",
                       "--json")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(json.loads(r.stdout)["errors_by_reason"], {"unexpected answer": 5})
        r = self.bench("get", "--count", "5", "--names", prefix)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--names is for locate", r.stderr)

    def test_boot_storm_time_to_last_key(self):
        report = self.bench_json("boot-storm", "--hosts", "16", "--keys", "4")
        self.assertEqual(report["ops"], 16)
        self.assertEqual(report["handshakes"], 16)
        self.assertGreater(report["time_to_last_key_s"], 0)
        self.assertEqual(report["time_to_last_key_s"], report["elapsed_s"])

    def test_plots(self):
        """--plot draws two PNG files through gnuplot."""
        prefix = os.path.join(self.dir, "run")
        self.bench_json("get", "--count", "100", "--concurrency", "2", "--plot", prefix)
        for name in ("run-time.png", "run-cdf.png"):
            with open(os.path.join(self.dir, name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)

    def test_heap_returned_after_storm(self):
        """keeld gives back the heap a boot storm's handshakes grew: 500 hosts
        come and go, then keeld's RSS returns to within 10 MiB of where it
        was (without malloc_trim it stays ~20 MiB above: glibc returns only
        the free space at the top of its heap)."""
        pid = self.keeld.proc.pid
        if sanitized_or_valgrind(pid):
            self.skipTest("RSS under a sanitizer or valgrind says nothing about keeld's own")
        before = rss_kib(pid)
        self.bench_json("boot-storm", "--hosts", "500", "--keys", "1")
        deadline = time.monotonic() + 30  # the trim runs a second after the last close
        while rss_kib(pid) > before + 10 * 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertLessEqual(rss_kib(pid), before + 10 * 1024, "KiB; %d before" % before)

    def discover_versions(self, port):
        """The Protocol Versions a server lists, and its answer's length."""
        with kw.KmipConn(port, client_ctx(os.path.join(self.dir, "dev"))) as c:
            resp = c.call(kw.request([kw.op(kw.OP_DISCOVER_VERSIONS, [])]))
        versions = [(v.find(kw.PROTOCOL_VERSION_MAJOR), v.find(kw.PROTOCOL_VERSION_MINOR))
                    for v in resp.item(0).payload.all(kw.PROTOCOL_VERSION)]
        return versions, len(kw.reencode(resp))

    def test_echo_server(self):
        """keel-bench serve, the transport ceiling, answers every scenario without an error."""
        certs = os.path.join(self.dir, "dev", "certs")
        serve = Process([BENCH, "serve", "--target", "127.0.0.1:0",
                         "--ca", os.path.join(certs, "ca.crt"),
                         "--cert", os.path.join(certs, "server.crt"),
                         "--key", os.path.join(certs, "server.key")])
        try:
            port = int(serve.wait_line(serve.out, r"^READY (\d+)$").group(1))
            # A fair ceiling: its Discover Versions answer is keeld's, byte for byte long.
            self.assertEqual(self.discover_versions(port),
                             self.discover_versions(self.keeld.port))
            for args in (("get", "--count", "100", "--concurrency", "2"),
                         ("create", "--count", "20"),
                         ("vcenter-task", "--count", "10", "--tls", "1.3", "--no-resumption"),
                         ("locate", "--count", "10", "--objects", "5"),
                         ("boot-storm", "--hosts", "8")):
                with self.subTest(args=args):
                    self.bench_json(*args, target=port)
        finally:
            serve.proc.kill()
            serve.proc.wait(RUN_GUARD)

    def test_vcenter_split(self):
        """tools/vcenter-split: keeld and the echo, each run's CPU per task,
        idle cores and phases (docs/benchmarks.md); a bad argument is a usage error."""
        tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                            "vcenter-split")
        cmd = [tool, "--keeld", KEELD, "--bench", BENCH, "--concurrency", "4"]
        r = subprocess.run(cmd + ["--rounds", "1", "--count", "400"], capture_output=True,
                           text=True, timeout=RUN_GUARD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        cpu = r"[0-9]+ tasks/s  CPU µs/task: %s  idle [0-9.]+ cores\n +mean ms: connect [0-9.]+"
        self.assertRegex(r.stdout, r"keeld +" + cpu % r"key [0-9]+  network [0-9]+  keel-bench [0-9]+")
        m = re.search(r"echo +" + cpu % r"echo ([0-9]+)  keel-bench ([0-9]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        # The echo's threads end with their connections; their CPU counts too
        # (the echo's TLS work is about what keel-bench's is).
        self.assertGreater(int(m.group(1)), int(m.group(2)) / 4, r.stdout)
        r = subprocess.run(cmd + ["--rounds", "0"], capture_output=True, text=True,
                           timeout=RUN_GUARD)
        self.assertEqual(r.returncode, 64, r.stderr)

    def test_cpu_pairs_vcenter_task(self):
        """tools/cpu-pairs vcenter-task: the resumed TLS 1.3 task (issue 7), a
        round's CPU per task of both processes; a bad count is a usage error."""
        tools = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
        build = os.path.dirname(os.path.dirname(os.path.abspath(KEELD)))
        sys.path.insert(0, tools)
        from benchproc import bench_argv
        argv = bench_argv(BENCH, "vcenter-task", 1, "certs", 4, 40)
        self.assertEqual(argv[argv.index("--tls") + 1], "1.3")
        self.assertNotIn("--no-resumption", argv)
        self.assertNotIn("--tls", bench_argv(BENCH, "get", 1, "certs", 4, 40))
        tool = os.path.join(tools, "cpu-pairs")
        r = subprocess.run([tool, "vcenter-task", "40", "1", build], capture_output=True,
                           text=True, timeout=RUN_GUARD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"round 1 load [0-9.]+ .*: key [0-9]+ µs, network [0-9]+ µs, "
                                   r"[0-9.]+ switches, [0-9]+/s, p99 [0-9.]+ ms")
        r = subprocess.run([tool, "vcenter-task", "x", "1", build], capture_output=True,
                           text=True, timeout=RUN_GUARD)
        self.assertEqual(r.returncode, 64, r.stderr)

    def test_failures_counted_in_exit_status(self):
        """A server that is gone: setup fails, exit status 3, the reason said."""
        port = self.keeld.port
        self.keeld.stop()
        certs = os.path.join(self.dir, "dev", "certs")
        r = subprocess.run([BENCH, "get", "--count", "1", "--target", "127.0.0.1:%d" % port,
                            "--ca", os.path.join(certs, "ca.crt"),
                            "--cert", os.path.join(certs, "client.crt"),
                            "--key", os.path.join(certs, "client.key")],
                           capture_output=True, text=True, timeout=RUN_GUARD)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("setup failed", r.stderr)

    def test_usage_error(self):
        r = subprocess.run([BENCH, "get", "--count", "0"], capture_output=True, text=True,
                           timeout=RUN_GUARD)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage:", r.stderr)


if __name__ == "__main__":
    unittest.main()
