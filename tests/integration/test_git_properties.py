"""git metadata of the source directory as run properties."""

import os
import subprocess

GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")


def git(root, *args):
    return subprocess.run(["git", "-C", str(root)] + list(args), env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


def repo(make_tree, name="src"):
    src = make_tree({"a.py": "print(1)\n", "sub/b.py": "print(2)\n"}, name=name)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", ".")
    git(src, "commit", "-qm", "init")
    return src


def props(daemon, run):
    return daemon.show(run)["properties"]


def test_commit_branch_clean_and_remote(daemon, make_tree):
    src = repo(make_tree)
    git(src, "remote", "add", "origin", "https://alice:s3cret@example.com/team/proj.git")
    sub = daemon.submit(src, "a.py")
    p = props(daemon, sub["id"])
    assert p == {"git.commit": git(src, "rev-parse", "HEAD"), "git.branch": "main",
                 "git.dirty": "false", "git.remote": "https://example.com/team/proj.git"}
    assert "s3cret" not in str(daemon.show(sub["id"]))
    out = daemon.cli("show", sub["id"]).stdout
    assert "git.commit=" + git(src, "rev-parse", "HEAD") in out
    assert "git.dirty=false" in out
    daemon.wait_terminal(sub["id"])


def test_dirty_detached_subdirectory_no_remote(daemon, make_tree):
    src = repo(make_tree)
    (src / "a.py").write_text("print('changed')\n")
    sub = daemon.submit(src / "sub", "b.py")  # a subdirectory of the work tree
    p = props(daemon, sub["id"])
    assert p["git.dirty"] == "true" and p["git.branch"] == "main"
    assert "git.remote" not in p
    git(src, "checkout", "-q", "--", "a.py")
    (src / "untracked.txt").write_text("new\n")
    sub2 = daemon.submit(src, "a.py")
    assert props(daemon, sub2["id"])["git.dirty"] == "true"
    (src / "untracked.txt").unlink()
    git(src, "checkout", "-q", "--detach")
    sub3 = daemon.submit(src, "a.py")
    p = props(daemon, sub3["id"])
    assert "git.branch" not in p and p["git.dirty"] == "false"
    assert p["git.commit"] == git(src, "rev-parse", "HEAD")
    for r in (sub, sub2, sub3):
        daemon.wait_terminal(r["id"])


def test_branch_remote_is_preferred_and_no_repo_no_properties(daemon, make_tree):
    src = repo(make_tree)
    git(src, "remote", "add", "origin", "git@example.com:org/origin.git")
    git(src, "remote", "add", "upstream", "ssh://git@example.com/org/up.git")
    git(src, "config", "branch.main.remote", "upstream")
    sub = daemon.submit(src, "a.py")
    assert props(daemon, sub["id"])["git.remote"] == "ssh://git@example.com/org/up.git"
    plain = make_tree({"a.py": "print(1)\n"}, name="plain")
    sub2 = daemon.submit(plain, "a.py")
    assert props(daemon, sub2["id"]) == {}
    for r in (sub, sub2):
        daemon.wait_terminal(r["id"])


def test_the_daemons_git_environment_does_not_leak(daemon_factory, make_tree, tmp_path):
    """GIT_DIR in the daemon's environment must not point git elsewhere."""
    other = repo(make_tree, name="other")
    d = daemon_factory(env={"GIT_DIR": str(other / ".git")})
    src = repo(make_tree)
    (src / "x.txt").write_text("x\n")
    git(src, "add", "x.txt")
    git(src, "commit", "-qm", "second")
    sub = d.submit(src, "a.py")
    assert props(d, sub["id"])["git.commit"] == git(src, "rev-parse", "HEAD")
    assert props(d, sub["id"])["git.commit"] != git(other, "rev-parse", "HEAD")
    d.wait_terminal(sub["id"])
