#!/usr/bin/python3
"""Write examples/notebook/notebook.ipynb from notebook.py: one cell per
'# %%' section ('# %% [markdown]' sections become markdown cells, their '# '
stripped; the comment block at the top is the first markdown cell).
tests/integration/test_notebook.py checks that the two agree."""

import json
import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "notebook"


def markdown(body):
    return [l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines(True)]


def main():
    parts = re.split(r"^(# %%.*)$", (HERE / "notebook.py").read_text(), flags=re.M)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": markdown(parts[0].strip())}]
    for marker, body in zip(parts[1::2], parts[2::2]):
        body = body.strip()
        if not body:
            continue
        if "[markdown]" in marker:
            cells.append({"cell_type": "markdown", "metadata": {}, "source": markdown(body)})
        else:
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {},
                          "outputs": [], "source": body.splitlines(True)})
    nb = {"cells": cells,
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                      "name": "python3"},
                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (HERE / "notebook.ipynb").write_text(json.dumps(nb, indent=1) + "\n")


if __name__ == "__main__":
    main()
