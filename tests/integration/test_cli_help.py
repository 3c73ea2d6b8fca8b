"""Help for every command, group and sub-verb, and the CLI's usage errors.

The forms: 'runyard help G S', 'runyard G S --help' (and -h), 'runyard G
--help' and 'runyard help G'. The commands, groups and sub-verbs are read
from the CLI's own help output, and checked against the list below so that
a verb cannot lose its help unnoticed. None of this needs a daemon: help and
usage errors come before the CLI connects, so the socket named here does not
exist and autostart is off.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import CLI

# Every group and its sub-verbs, as the usage texts list them.
GROUPS = {
    "daemon": ["start", "stop", "status", "set"],
    "ignore": ["check"],
    "model": ["register", "list", "show", "download", "delete", "deploy"],
    "service": ["list", "show", "logs", "restart", "delete", "invoke"],
    "env": ["create", "list", "show", "delete", "prune"],
    "compute": ["create", "list", "show", "delete"],
    "dataset": ["register", "list", "show", "download", "delete"],
    "sweep": ["submit", "list", "show", "explain", "cancel"],
    "cache": ["ls", "clear"],
}
# The commands that are not groups.
VERBS = ["submit", "runs", "show", "logs", "wait", "cancel", "update", "outputs", "experiments",
         "rm", "gc", "du", "ui", "metrics", "compare", "tag", "snapshot", "help"]

SUBVERBS = [(g, s) for g, subs in GROUPS.items() for s in subs]
# The sub-verbs whose options end at a PROGRAM, as submit's do.
PROGRAM_SUBVERBS = {("sweep", "submit")}


@pytest.fixture(scope="module")
def ry(tmp_path_factory):
    """Run the CLI with no daemon behind its socket; returns (rc, stdout, stderr)."""
    sock = str(tmp_path_factory.mktemp("help") / "no-daemon.sock")
    env = dict(os.environ, RUNYARD_NO_AUTOSTART="1", NO_COLOR="1")
    env.pop("RUNYARD_SOCKET", None)

    def run(*args):
        proc = subprocess.run([str(CLI), "--socket", sock] + list(args), capture_output=True,
                              text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout, proc.stderr
    return run


def ok(ry, *args):
    rc, out, err = ry(*args)
    assert rc == 0 and err == "", "runyard %s: rc=%d stderr=%r" % (" ".join(args), rc, err)
    assert out, "runyard %s printed nothing" % " ".join(args)
    return out


def usage_error(ry, *args):
    rc, out, err = ry(*args)
    assert rc == 1 and out == "", "runyard %s: rc=%d stdout=%r" % (" ".join(args), rc, out)
    return err


def commands_of(overview):
    """The command names of the overview's Commands: section."""
    lines = overview.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.split()[0] for line in lines]


def subverbs_of(name, usage):
    """The sub-verbs a usage text lists: 'runyard NAME WORD' with WORD in lowercase."""
    return re.findall(r"^(?:Usage:)?\s*runyard %s ([a-z][a-z-]*)\b" % re.escape(name), usage,
                      re.M)


def test_overview_lists_every_command_and_help_forms_agree(ry):
    overview = ok(ry, "--help")
    assert ok(ry, "-h") == overview
    assert ok(ry, "help") == overview
    assert commands_of(overview) == VERBS[:12] + ["cache", "daemon"] + VERBS[12:16] + ["ignore"] + \
        VERBS[16:17] + ["model", "service", "env", "compute", "dataset", "sweep", "help"]
    # No command at all: the overview on stderr, a usage exit.
    rc, out, err = ry()
    assert (rc, out, err) == (1, "", overview)


def test_groups_and_subverbs_read_from_the_help_output_are_all_covered(ry):
    found = {}
    for name in commands_of(ok(ry, "--help")):
        subs = subverbs_of(name, ok(ry, "help", name))
        if subs:
            found[name] = list(dict.fromkeys(subs))
    assert found == GROUPS
    assert sorted(set(commands_of(ok(ry, "--help"))) - set(found)) == sorted(VERBS)


@pytest.mark.parametrize("verb", VERBS)
def test_help_of_a_command(ry, verb):
    text = ok(ry, "help", verb)
    assert text.startswith("Usage: runyard %s" % verb), text
    assert ok(ry, verb, "--help") == text
    assert ok(ry, verb, "-h") == text


@pytest.mark.parametrize("group", list(GROUPS))
def test_help_of_a_group(ry, group):
    text = ok(ry, "help", group)
    assert text.startswith("Usage: runyard %s " % group), text
    assert ok(ry, group, "--help") == text
    assert ok(ry, group, "-h") == text
    for sub in GROUPS[group]:
        assert "runyard %s %s" % (group, sub) in text


@pytest.mark.parametrize("group,sub", SUBVERBS, ids=["%s-%s" % p for p in SUBVERBS])
def test_help_of_a_subverb(ry, group, sub):
    text = ok(ry, "help", group, sub)
    assert text.startswith("Usage: runyard %s %s" % (group, sub)), text
    # The sub-verb's own text, not its group's again.
    assert text != ok(ry, "help", group)
    assert ok(ry, group, sub, "--help") == text
    assert ok(ry, group, sub, "-h") == text
    # --help comes before the arguments are checked, as for every verb;
    # except after a PROGRAM, whose arguments everything after it is.
    if (group, sub) not in PROGRAM_SUBVERBS:
        assert ok(ry, group, sub, "x", "y", "z", "--help") == text


@pytest.mark.parametrize("group", list(GROUPS))
def test_unknown_subverb_is_a_usage_error(ry, group):
    want = "runyard: unknown %s command 'bogus' (see 'runyard %s --help')\n" % (group, group)
    assert usage_error(ry, group, "bogus") == want
    assert usage_error(ry, "help", group, "bogus") == want


def test_unknown_command_is_a_usage_error(ry):
    want = "runyard: unknown command 'bogus' (see 'runyard --help')\n"
    assert usage_error(ry, "bogus") == want
    assert usage_error(ry, "help", "bogus") == want


@pytest.mark.parametrize("group", list(GROUPS))
def test_group_without_subverb_is_a_usage_error(ry, group):
    err = usage_error(ry, group)
    if group == "daemon":
        assert err == ("runyard: daemon needs start, stop, status or set "
                       "(see 'runyard daemon --help')\n")
    elif group == "ignore":
        assert err == "runyard: ignore needs a command: check (see 'runyard ignore --help')\n"
    else:
        assert err == ok(ry, "help", group)


ARITY = [
    (["runs", "x"], "unexpected argument 'x'"),
    (["show"], "which run? give its id or number"),
    (["logs"], "which run? give its id or number"),
    (["wait"], "which run? give its id or number"),
    (["cancel"], "which run? give its id or number"),
    (["outputs", "1", "2"], "unexpected argument '2'"),
    (["experiments", "x"], "unexpected argument 'x' (the one sub-command is 'rm NAME')"),
    (["experiments", "rm"], "which experiment? give its name"),
    (["experiments", "rm", "a", "b"], "give one experiment's name"),
    (["rm"], "which runs? give ids, numbers or ranges, or --experiment, --status, --before "
     "or --parent"),
    (["rm", "--before", "soon"], "--before needs a date (2026-11-01, 2026-11-01T12:00:00Z, "
     "UTC) or an age (30d, 12h, 2w), not 'soon'"),
    (["rm", "9-3"], "'9-3' is not a range of run numbers: give FIRST-LAST with FIRST "
     "<= LAST, at most 100000 runs"),
    (["gc", "x"], "unexpected argument 'x'"),
    (["cache", "ls", "x"], "unexpected argument 'x'"),
    (["cache", "clear", "x"], "unexpected argument 'x'"),
    (["du", "x"], "unexpected argument 'x'"),
    (["metrics"], "which run? give its id or number"),
    (["metrics", "1", "loss", "x"], "unexpected argument 'x'"),
    (["compare", "1"], "compare needs at least two runs"),
    (["tag"], "which run? give its id or number"),
    (["snapshot"], "which run? give its id or number"),
    (["daemon", "stop", "x"], "unexpected argument 'x'"),
    (["daemon", "status", "x"], "unexpected argument 'x'"),
    (["daemon", "set"], "nothing to change: give --max-runs N"),
    (["daemon", "set", "--max-runs", "0"], "--max-runs needs a number from 1 to 100000, not '0'"),
    (["update"], "which run? give its id or number"),
    (["update", "1"], "nothing to change: give --priority N, --cpus N, --mem SIZE, --gpus N "
     "or --gpu-mem SIZE"),
    (["update", "1", "--cpus", "0"], "--cpus needs a number from 1 to 100000, not '0'"),
    (["update", "1", "--priority", "5000"],
     "--priority needs an integer from -1000 to 1000, not '5000'"),
    (["cancel", "20-12"], "'20-12' is not a range of run numbers: give FIRST-LAST with FIRST "
     "<= LAST, at most 100000 runs"),
    (["ignore", "check"], "no PATH to check"),
    (["model", "register"], "which name? give the model's name"),
    (["model", "list", "a", "b"], "unexpected argument 'b'"),
    (["model", "show"], "which model?"),
    (["model", "download", "m"], "give the model (NAME[:VERSION]) and a directory"),
    (["model", "download", "m", "d", "x"], "give the model (NAME[:VERSION]) and a directory"),
    (["model", "delete"], "which model (NAME:VERSION)?"),
    (["model", "deploy", "m", "x"], "unexpected argument 'x'"),
    (["service", "list", "x"], "unexpected argument 'x'"),
    (["service", "show"], "which service?"),
    (["service", "invoke", "a", "b"], "unexpected argument 'b'"),
    (["env", "create"], "which name? give the environment's name"),
    (["env", "list", "x"], "unexpected argument 'x'"),
    (["env", "show"], "which environment?"),
    (["env", "delete"], "which environment (NAME[:VERSION])?"),
    (["env", "prune", "x"], "unexpected argument 'x'"),
    (["compute", "create"],
     "give one target NAME: runyard compute create NAME --type slurm --rest URL"),
    (["compute", "show", "a", "b"], "give one compute target NAME"),
    (["compute", "list", "x"], "unexpected argument 'x'"),
    (["dataset", "register", "d"],
     "runyard dataset register NAME SOURCE... (a file, a directory or a URL)"),
    (["dataset", "list", "a", "b"], "unexpected argument 'b'"),
    (["dataset", "download"], "which dataset?"),
    (["sweep", "list", "x"], "unexpected argument 'x'"),
    (["sweep", "show"], "which sweep? give its id or number"),
    (["sweep", "show", "1", "2"], "unexpected argument '2'"),
    (["sweep", "explain"], "which sweep? give its id or number"),
    (["sweep", "cancel"], "which sweep? give its id or number"),
    (["sweep", "cancel", "1", "2"], "unexpected argument '2'"),
]


@pytest.mark.parametrize("args,message", ARITY, ids=[" ".join(a) for a, _ in ARITY])
def test_wrong_arity_is_the_verbs_usage_error(ry, args, message):
    name = " ".join(args[:2] if args[0] in GROUPS else args[:1])
    assert usage_error(ry, *args) == "runyard: %s (see 'runyard %s --help')\n" % (message, name)


# sweep submit's usage errors: each before the CLI connects, with the flag named.
SWEEP_OK = ["--metric", "acc", "--goal", "maximize", "--param", "--x=choice(1, 2)",
            "--max-total", "2"]
SWEEP_USAGE = [
    (["--goal", "maximize", "--param", "x=choice(1)", "--max-total", "1", "--", "t.py"],
     "no --metric: which metric does the sweep optimise?"),
    (["--metric", "acc", "--param", "x=choice(1)", "--max-total", "1", "--", "t.py"],
     "no --goal: give --goal maximize or --goal minimize"),
    (["--metric", "acc", "--goal", "up"], "--goal takes maximize or minimize, not 'up'"),
    (["--sampling", "sobol"], "--sampling takes random, grid or bayesian, not 'sobol'"),
    (["--metric", "acc", "--goal", "maximize", "--max-total", "1", "--", "t.py"],
     "no --param: give at least one --param NAME=EXPRESSION"),
    (["--param", "lr"], "--param needs NAME=EXPRESSION, not 'lr'"),
    (["--param", "=uniform(0, 1)"], "--param needs NAME=EXPRESSION, not '=uniform(0, 1)'"),
    (["--param", "lr="], "--param needs NAME=EXPRESSION, not 'lr='"),
    (["--max-total", "many"], "--max-total needs a number from 1 to 100000, not 'many'"),
    (["--max-total", "0"], "--max-total needs a number from 1 to 100000, not '0'"),
    (["--max-concurrent", "1001"], "--max-concurrent needs a number from 1 to 1000, not '1001'"),
    (["--max-duration", "-5"], "--max-duration wants a number above 0, not '-5'"),
    (["--seed", "-1"], "--seed needs an integer from 0 to 2^53, not '-1'"),
    (["--bogus"], "unknown option '--bogus'"),
    (["--metric"], "option '--metric' needs a value"),
    (["--json=1"], "option '--json' takes no value"),
    (SWEEP_OK[:6], "no program to run: runyard sweep submit [OPTIONS] -- PROGRAM [ARGS...]"),
    (["--metric", "acc", "--goal", "maximize", "--param", "x=choice(1)", "--", "t.py"],
     "no --max-total: only a grid sweep has a size of its own"),
    # Shared with submit, and said the same way.
    (["--timeout", "soon"], "--timeout needs a number of seconds > 0, not 'soon'"),
    (["--env", "NOEQUALS"], "--env needs KEY=VALUE, not 'NOEQUALS'"),
]


@pytest.mark.parametrize("args,message", SWEEP_USAGE, ids=[" ".join(a) for a, _ in SWEEP_USAGE])
def test_sweep_submit_usage_errors(ry, args, message):
    assert usage_error(ry, "sweep", "submit", *args) == \
        "runyard: %s (see 'runyard sweep submit --help')\n" % message


def test_sweep_submit_help_names_every_option(ry):
    text = ok(ry, "sweep", "submit", "--help")
    for opt in ("--metric", "--goal", "--sampling", "--param", "--max-total", "--max-concurrent",
                "--max-duration", "--policy", "--seed", "-f, --file", "--json", "--experiment",
                "--source", "--python", "--environment", "--target"):
        assert opt in text, opt
    assert ok(ry, "help", "sweep", "submit") == text


def test_sweep_submit_file_errors_name_the_file(ry, tmp_path):
    missing = tmp_path / "missing.json"
    err = usage_error(ry, "sweep", "submit", "-f", str(missing))
    assert err == "runyard: cannot read sweep file %s: No such file or directory\n" % missing

    bad = tmp_path / "bad.json"
    bad.write_text('{\n "metric": "acc",\n "goal": maximize\n}\n')
    assert usage_error(ry, "sweep", "submit", "-f", str(bad)) == \
        "runyard: %s: not valid JSON (line 3)\n" % bad

    bad.write_text('[1, 2]')
    assert usage_error(ry, "sweep", "submit", "-f", str(bad)) == \
        "runyard: %s: must hold a JSON object\n" % bad

    bad.write_text('{"metric": "acc", "bogus": 1}')
    err = usage_error(ry, "sweep", "submit", "-f", str(bad))
    assert err.startswith("runyard: %s: unknown key 'bogus' (known: command, " % bad), err
    assert "metric, goal, sampling, params" in err

    for doc, why in [({"metric": 1}, "key 'metric' must be a string"),
                     ({"goal": "up"}, 'key \'goal\' must be "maximize" or "minimize"'),
                     ({"params": {"x": 1}}, "key 'params'"),
                     ({"max_total": "many"}, "key 'max_total'"),
                     ({"max_total": 0}, "key 'max_total'"),
                     ({"policy": 3}, "key 'policy' must be a string or an object"),
                     ({"timeout": -1}, "key 'timeout'")]:
        bad.write_text(json.dumps(doc))
        err = usage_error(ry, "sweep", "submit", "-f", str(bad))
        assert err.startswith("runyard: %s: %s" % (bad, why)), (doc, err)

    # A file without what the flags would give: the same errors as the flags'.
    bad.write_text(json.dumps({"metric": "acc", "command": ["t.py"]}))
    assert usage_error(ry, "sweep", "submit", "-f", str(bad)) == \
        "runyard: no --goal: give --goal maximize or --goal minimize " \
        "(see 'runyard sweep submit --help')\n"


def test_runs_takes_parent_in_its_help(ry):
    assert "--parent SWEEP" in ok(ry, "runs", "--help")
