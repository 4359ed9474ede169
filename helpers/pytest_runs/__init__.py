"""Running a learner's own tests from a notebook: in the kernel with ipytest, or as a child `pytest`.

- `record`: a pytest plugin that keeps each test's outcome, so the notebook can assert what a run showed;
- `inline`: the ipytest settings the lessons use, on the kernel's thread or on a thread of its own;
- `project`: a throwaway project folder (app + tests + config) run by a real `pytest` command;
- `terminal`: the width and the non-CI mode every such run sees, so stored outputs match everywhere.
"""

__all__: list[str] = []
