"""Generate ``src/shelfwise_client/_schema.py`` (TypedDicts) from the committed OpenAPI schema.

    python sdk/python/scripts/generate_schema.py            # rewrite _schema.py (`make sdk`)
    python sdk/python/scripts/generate_schema.py --check    # exit 1, with a diff, if it is stale

datamodel-code-generator (pinned in the project's dev dependencies) writes the types; the result
is formatted with the project's ruff configuration so the committed file passes `make lint`
unchanged. tests/e2e/test_sdk_python.py runs the same function and fails when the committed file
differs, so a change to docs/openapi.yaml that changes a generated type cannot go unnoticed; mypy
(strict) then checks the hand-written client against the new types.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

SDK = Path(__file__).resolve().parent.parent
ROOT = SDK.parent.parent
SCHEMA = ROOT / "docs" / "openapi.yaml"
TARGET = SDK / "src" / "shelfwise_client" / "_schema.py"
GENERATOR = "datamodel-code-generator"

HEADER = """\
Generated from docs/openapi.yaml by {generator} {version}: do not edit by hand.
Regenerate with `make sdk` (sdk/python/scripts/generate_schema.py); tests/e2e/test_sdk_python.py
fails when this file and the schema differ."""

OPTIONS = [
    "--input-file-type=openapi",
    "--output-model-type=typing.TypedDict",
    "--target-python-version=3.11",
    "--enum-field-as-literal=all",  # JSON strings stay strings: Literal types, not Enum classes
    "--no-use-closed-typed-dict",  # PEP 728 needs typing_extensions at run time, and mypy lacks it
    "--use-schema-description",
    "--use-field-description",
    "--disable-timestamp",
    "--formatters=builtin",  # then ruff, below, with the project's settings
]


def _ruff(args: list[str], source: str) -> str:
    """``source`` through ruff as if it were the target file (so the project's config applies)."""
    relative = TARGET.relative_to(ROOT).as_posix()
    done = subprocess.run(  # noqa: S603 - fixed argv: this interpreter's ruff
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", relative, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ruff {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def generate(schema: Path = SCHEMA) -> str:
    """The text ``_schema.py`` should have for ``schema``."""
    header = HEADER.format(generator=GENERATOR, version=version(GENERATOR))
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "_schema.py"
        done = subprocess.run(  # noqa: S603 - fixed argv: this interpreter's generator
            [
                sys.executable,
                "-m",
                "datamodel_code_generator",
                f"--input={schema}",
                f"--output={output}",
                f"--custom-file-header={_comment(header)}",
                *OPTIONS,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"datamodel-codegen failed:\n{done.stderr}")
        text = output.read_text()
    text = _ruff(["check", "--fix", "--quiet", "--exit-zero"], text)
    return _ruff(["format", "--quiet"], text)


def _comment(text: str) -> str:
    return "\n".join(f"# {line}" if line else "#" for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail (exit 1) if the committed file is stale")
    parser.add_argument("--schema", type=Path, default=SCHEMA, help="the OpenAPI document (default: docs/openapi.yaml)")
    args = parser.parse_args(argv)
    expected = generate(args.schema)
    current = TARGET.read_text() if TARGET.exists() else ""
    if args.check:
        if current == expected:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "committed/_schema.py",
                "generated/_schema.py",
            )
        )
        return 1
    if current != expected:
        TARGET.write_text(expected)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
