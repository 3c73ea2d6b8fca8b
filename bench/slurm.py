"""Trivial runs on the one-node Slurm cluster: runyard's Slurm target against
the same jobs submitted with sbatch directly.

Starts the cluster with scripts/slurm-cluster.sh (installing Slurm when it is
missing) and a private runyardd with a target on it, then, alternating:

- runyard: N trivial runs (a shell script printing one line), one
  `runyard submit --target` call each, back to back; each run's time from just
  before its submit to its ended_at (Completed), and the wall time of the batch
  until the last is Completed;
- sbatch: the same script as N jobs, one `sbatch --parsable` each, back to
  back; each job's time from just before its sbatch to the first poll of
  squeue (every 20 ms) that shows it COMPLETED, and the batch's wall time.

Both ask Slurm for one CPU per job. Prints medians and the ratios
runyard/sbatch; the cluster and the daemon are stopped at the end.

    /usr/bin/python3 bench/slurm.py [--runs 20] [--rounds 3] [--build build]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import REPO, Runyard, median, parse_ts

SCRIPT = "#!/bin/sh\necho trivial run\n"


def sbatch_round(env, workdir, n):
    ids, started = [], {}
    t0 = time.time()
    for i in range(n):
        t = time.time()
        p = subprocess.run(["sbatch", "--parsable", "--cpus-per-task=1", "-o",
                            os.path.join(workdir, "sb-%j.out"), "-D", workdir,
                            os.path.join(workdir, "one.sh")],
                           capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit("sbatch failed: %s" % p.stderr)
        job = p.stdout.strip().split(";")[0]
        ids.append(job)
        started[job] = t
    done = {}
    deadline = time.time() + 300
    while len(done) < n:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True,
                             text=True, env=env).stdout
        now = time.time()
        for line in out.splitlines():
            job, state = line.split()
            if job in started and job not in done and state == "COMPLETED":
                done[job] = now
            elif job in started and state in ("FAILED", "CANCELLED", "TIMEOUT"):
                sys.exit("sbatch job %s ended %s" % (job, state))
        if time.time() > deadline:
            sys.exit("sbatch jobs did not finish")
        time.sleep(0.02)
    return [done[j] - started[j] for j in ids], max(done.values()) - t0


def runyard_round(ry, src, n):
    ids, started = [], {}
    t0 = time.time()
    for i in range(n):
        t = time.time()
        res = json.loads(ry.cli("submit", "--json", "--source", src, "--target", "hpc",
                                "--cpus", "1", "--", "one.sh").stdout)
        ids.append(res["id"])
        started[res["id"]] = t
    deadline = time.time() + 300
    while True:
        runs = json.loads(ry.cli("runs", "--json", "--limit", str(n)).stdout)
        runs = {r["id"]: r for r in (runs["runs"] if isinstance(runs, dict) else runs)}
        states = [runs[i]["status"] for i in ids if i in runs]
        if len(states) == n and all(s in ("Completed", "Failed", "Canceled") for s in states):
            break
        if time.time() > deadline:
            sys.exit("runyard runs did not finish")
        time.sleep(0.02)
    bad = [i for i in ids if runs[i]["status"] != "Completed"]
    if bad:
        sys.exit("run %s ended %s: %s" % (bad[0], runs[bad[0]]["status"], ry.show(bad[0])))
    ends = {i: parse_ts(runs[i]["ended_at"]) for i in ids}
    return [ends[i] - started[i] for i in ids], max(ends.values()) - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    script = os.path.join(REPO, "scripts", "slurm-cluster.sh")
    p = subprocess.run(["bash", script, "start"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("the Slurm cluster could not start:\n%s" % p.stderr)
    sock = p.stdout.strip().splitlines()[-1]
    cdir = os.path.dirname(sock)
    env = dict(os.environ, SLURM_CONF=os.path.join(cdir, "slurm.conf"))
    workdir = tempfile.mkdtemp(prefix="ry-bench-slurm-")
    ry = None
    try:
        src = os.path.join(workdir, "src")
        os.makedirs(src)
        for d in (src, workdir):
            with open(os.path.join(d, "one.sh"), "w") as f:
                f.write(SCRIPT)
            os.chmod(os.path.join(d, "one.sh"), 0o755)
        ry = Runyard(os.path.abspath(args.build), workdir, max_runs=os.cpu_count())
        ry.cli("compute", "create", "hpc", "--type", "slurm", "--rest", "unix:" + sock)
        # Warm both paths once (page cache, the daemon's first snapshot).
        runyard_round(ry, src, 2)
        sbatch_round(env, workdir, 2)
        lat = {"runyard": [], "sbatch": []}
        wall = {"runyard": [], "sbatch": []}
        for r in range(args.rounds):
            l, w = sbatch_round(env, workdir, args.runs)
            lat["sbatch"] += l
            wall["sbatch"].append(w)
            l, w = runyard_round(ry, src, args.runs)
            lat["runyard"] += l
            wall["runyard"].append(w)
        print("%d trivial runs on a one-node Slurm cluster (%d CPUs), %d rounds, medians"
              % (args.runs, os.cpu_count(), args.rounds))
        print("%-8s %22s %24s" % ("", "submit -> Completed", "all %d finished (wall)" % args.runs))
        for k in ("sbatch", "runyard"):
            print("%-8s %20.3f s %22.3f s" % (k, median(lat[k]), median(wall[k])))
        print("ratio runyard/sbatch: latency %.2f, wall %.2f"
              % (median(lat["runyard"]) / median(lat["sbatch"]),
                 median(wall["runyard"]) / median(wall["sbatch"])))
    finally:
        if ry:
            ry.stop()
        subprocess.run(["bash", script, "stop", cdir])
        shutil.rmtree(cdir, ignore_errors=True)
        if args.keep:
            print("kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
