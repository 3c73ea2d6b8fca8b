"""The iris example of examples/iris runs through runyard as the seed describes."""

import hashlib
import subprocess

from conftest import PY, REPO


def test_iris_example_trains_and_stores_the_model(daemon, tmp_path):
    src = REPO / "examples" / "iris"
    res = daemon.cli("submit", "--experiment", "iris", "--source", src, "--python", PY,
                     "--wait", "--show-output", "--",
                     "train_iris.py", "--kernel", "linear", "--penalty", "1.0", timeout=300)
    assert "Accuracy" in res.stdout

    run = daemon.cli("show", "1", json=True).json
    assert run["status"] == "Completed" and run["experiment"] == "iris"
    texts = [l["text"] for l in daemon.logs(run["id"])]
    assert any(t.startswith("Accuracy of SVM classifier on test set: ") for t in texts), texts

    arts = {a["path"]: a for a in daemon.cli("outputs", "1", json=True).json["artifacts"]}
    assert "outputs/model.joblib" in arts
    dest = tmp_path / "dl"
    daemon.cli("outputs", "1", "--download", dest)
    model = next(p for p in dest.rglob("model.joblib"))
    data = model.read_bytes()
    assert hashlib.sha256(data).hexdigest() == arts["outputs/model.joblib"]["sha256"]
    # The downloaded model loads and predicts.
    check = subprocess.run([PY, "-c", "import joblib, sys; m = joblib.load(sys.argv[1]); "
                            "print(m.predict([[5.1, 3.5, 1.4, 0.2]])[0])", str(model)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "0"
