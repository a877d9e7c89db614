"""Offline stand-in for the part of `terraform validate` that needs no provider.

`terraform validate` needs the AWS provider plugin, which cannot be downloaded here, so this
checks what can be checked from the text of deploy/terraform (already `terraform fmt`-clean):

- every `var.X`, `local.X`, `data.T.N` and `<resource type>.N` that is referred to is declared;
- every declared variable and local is used somewhere;
- every variable and output has a description.

Attribute names and argument schemas are not checked (that needs the provider's schema).

    python deploy/lint/terraform_refs.py [deploy/terraform]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Resource types come from these providers (and Terraform's own terraform_data).
RESOURCE_PREFIXES = ("aws_", "random_", "terraform_data")

BLOCK = re.compile(r'^(resource|data) "([a-z0-9_]+)" "([a-z0-9_]+)"', re.MULTILINE)
VARIABLE = re.compile(r'^variable "([a-z0-9_]+)" \{(.*?)^\}', re.MULTILINE | re.DOTALL)
OUTPUT = re.compile(r'^output "([a-z0-9_]+)" \{(.*?)^\}', re.MULTILINE | re.DOTALL)
LOCALS = re.compile(r"^locals \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
# After `terraform fmt`, a local's name starts a line indented by exactly two spaces.
LOCAL_NAME = re.compile(r"^  ([a-z0-9_]+)\s*=", re.MULTILINE)

VAR_REF = re.compile(r"\bvar\.([a-z0-9_]+)")
LOCAL_REF = re.compile(r"\blocal\.([a-z0-9_]+)")
DATA_REF = re.compile(r"\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)")
RESOURCE_REF = re.compile(r"(?<![\w.])([a-z][a-z0-9]*_[a-z0-9_]+)\.([a-z0-9_]+)\b")


def _without_comments(text: str) -> str:
    """The text with `#` and `//` comments removed (a `#` inside a string ends nothing we use)."""
    return "\n".join(re.split(r"\s#|^#|\s//", line, maxsplit=1)[0] for line in text.splitlines())


def check(directory: Path) -> list[str]:
    """Problems found in the .tf files of ``directory`` (empty when clean)."""
    files = sorted(directory.glob("*.tf"))
    if not files:
        return [f"{directory}: no .tf files"]
    text = "\n".join(_without_comments(path.read_text()) for path in files)

    resources = {(kind, type_, name) for kind, type_, name in BLOCK.findall(text)}
    managed = {(type_, name) for kind, type_, name in resources if kind == "resource"}
    data = {(type_, name) for kind, type_, name in resources if kind == "data"}
    variables = dict(VARIABLE.findall(text))
    outputs = dict(OUTPUT.findall(text))
    local_names = {name for block in LOCALS.findall(text) for name in LOCAL_NAME.findall(block)}

    problems: list[str] = []
    used_vars = set(VAR_REF.findall(text))
    used_locals = set(LOCAL_REF.findall(text))
    problems += [f"var.{name} is used but not declared" for name in sorted(used_vars - variables.keys())]
    problems += [f"variable {name} is declared but never used" for name in sorted(variables.keys() - used_vars)]
    problems += [f"local.{name} is used but not declared" for name in sorted(used_locals - local_names)]
    problems += [f"local {name} is declared but never used" for name in sorted(local_names - used_locals)]
    problems += [f"data.{t}.{n} is used but not declared" for t, n in sorted(set(DATA_REF.findall(text)) - data)]
    referenced = {
        (type_, name)
        for type_, name in RESOURCE_REF.findall(text.replace("data.", "data_source."))
        if type_.startswith(RESOURCE_PREFIXES)
    }
    problems += [f"{t}.{n} is used but not declared" for t, n in sorted(referenced - managed)]
    problems += [f"variable {name} has no description" for name, body in variables.items() if "description" not in body]
    problems += [f"output {name} has no description" for name, body in outputs.items() if "description" not in body]
    return problems


def main() -> int:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/terraform")
    problems = check(directory)
    for problem in problems:
        sys.stderr.write(f"{directory}: {problem}\n")
    if not problems:
        sys.stdout.write(f"{directory}: references, variables, locals and outputs check out\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
