"""`helm lint --strict` and `helm template` for tests/it/deploy_files.rs, through Helm's own Go
library (the helm-python-sdk wheel carries it; no helm binary is installable from the registries
CI reaches). Usage: helm.py CHART VALUES_JSON RELEASE REVISION. Prints the lint findings to
stderr and exits 1 when there are any; otherwise prints every rendered manifest as one
multi-document YAML stream, each document headed by `# Source: <template>` as helm template
prints it."""

import json
import sys

import helm_python

chart_dir, values_json, release, revision = sys.argv[1:5]
values = json.loads(values_json)

report = helm_python.lint(chart_dir, values, strict=True)
findings = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
errors = list(report.get("errors") or [])
if findings or errors:
    for m in findings:
        print(f"helm lint: {m.get('path')}: {m.get('error')}", file=sys.stderr)
    for e in errors:
        print(f"helm lint: {e}", file=sys.stderr)
    sys.exit(1)

with helm_python.Chart.load(chart_dir) as chart:
    manifests = chart.render(
        values, name=release, namespace="default", revision=int(revision), is_upgrade=True
    )
for template in sorted(manifests):
    text = manifests[template].strip()
    if template.endswith(".yaml") and text:
        print(f"---\n# Source: {template}\n{text}")
