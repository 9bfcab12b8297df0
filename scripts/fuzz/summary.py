"""The summary of `make fuzz-api`: every distinct failure of every run, once.

Usage: summary.py REPORT_DIR

REPORT_DIR holds one directory per run (`<target>-<run>/`, in the order the
runs happened: see `runs.tsv`) with schemathesis's NDJSON event stream
(`events.ndjson`) and its exit status, and `<target>-server.log`, the
server's JSON log lines (and whatever else it printed). Prints a table of the runs, then the failures
grouped by check and operation, each line with what the server answered
(status, content type, `error_code`) and the runs that saw it, then the
server's logged errors. Exits 1 when anything failed, else 0.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from collections import OrderedDict
from pathlib import Path


def decode(payload) -> bytes:
    if isinstance(payload, dict) and "$base64" in payload:
        return base64.b64decode(payload["$base64"])
    if isinstance(payload, str):
        return payload.encode()
    return b""


def header(headers: dict, name: str) -> str:
    for key, values in (headers or {}).items():
        if key.lower() == name:
            return values[0] if isinstance(values, list) and values else str(values)
    return ""


def problem_code(content: bytes) -> str:
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ""
    if isinstance(body, dict):
        code = body.get("error_code") or ""
        fields = sorted({e.get("field", "?") for e in body.get("errors") or [] if isinstance(e, dict)})
        return f"{code} [{', '.join(fields)}]" if fields else code
    return ""


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def curl(request: dict) -> str:
    parts = [f"curl -X {request.get('method', 'GET')}"]
    content_type = header(request.get("headers") or {}, "content-type")
    if content_type:
        parts.append(f"-H 'Content-Type: {content_type}'")
    body = decode(request.get("body"))
    if body:
        parts.append("--data-binary " + repr(body.decode("utf-8", "backslashreplace"))[:200])
    parts.append(f"'{request.get('uri', '')}'")
    return " ".join(parts)


def problem_errors(content: bytes) -> list[str]:
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(body, dict):
        return []
    return [
        f"{error.get('field', '?')}: {error.get('message', '')}"
        for error in body.get("errors") or []
        if isinstance(error, dict)
    ]


def classify(check: str, failure: dict, status: int, content: bytes, request: dict) -> tuple[str, list[str]]:
    """A failure's headline, which tells it apart from the others of its check and
    operation, and its details, which are merged over every failure with that headline."""
    lines = [line.strip() for line in (failure.get("message") or "").splitlines() if line.strip()]
    title = failure.get("title") or ""
    code = problem_code(content).split(" [")[0]
    if check == "status_code_conformance":
        documented = next((line for line in lines if line.startswith("Documented")), "")
        return f"{status} undocumented ({documented.lower()})", [code] if code else []
    if check == "content_type_conformance":
        return f"{title}: " + "; ".join(lines), [str(status)]
    if check == "positive_data_acceptance":
        return f"{status} {code}".strip(), problem_errors(content) or [short(content.decode("utf-8", "replace"), 120)]
    if check == "negative_data_rejection":
        component = next((line for line in lines if line.startswith("Invalid component")), "")
        body = decode(request.get("body"))
        sample = f"body {short(body.decode('utf-8', 'backslashreplace'), 60)}" if body else short(request.get("uri", ""), 100)
        return f"{status} accepted ({component})", [sample]
    if check == "not_a_server_error":
        return f"{status} {code}".strip(), [short(curl(request), 160)]
    if check == "unsupported_method":
        text = "; ".join(lines[:1])
        match = re.search(r"method (\S+)", text)
        if match:
            return text.replace(match.group(0), "method M"), [match.group(1)]
        return f"{title}: {text}", []
    if check == "response_schema_conformance":
        detail = next((line for line in lines if line and not line.startswith(("Schema", "Value"))), "")
        return f"{status}: {title}: {detail}", []
    return f"{title}: " + "; ".join(lines[:1]), lines[1:2]


def main() -> int:
    root = Path(sys.argv[1])
    runs = []
    tsv = root / "runs.tsv"
    if tsv.exists():
        for line in tsv.read_text().splitlines():
            name, seconds, status = line.split("\t")
            runs.append((name, float(seconds), int(status)))

    failures: OrderedDict = OrderedDict()
    errors: OrderedDict = OrderedDict()
    rows = []
    for name, seconds, status in runs:
        events = root / name / "events.ndjson"
        cases = dropped = 0
        operations = set()
        run_failures = set()
        seed = ""
        reauth = ""
        if events.exists():
            for line in events.read_text().splitlines():
                event = json.loads(line)
                kind, data = next(iter(event.items()))
                if kind == "Initialize":
                    seed = str(data.get("seed", ""))
                elif kind == "EngineFinished":
                    reauth = str((data.get("payload") or {}).get("reauth_count", ""))
                elif kind == "ScenarioFinished":
                    recorder = data.get("recorder") or {}
                    interactions = recorder.get("interactions") or {}
                    cases += len(interactions)
                    dropped += sum((recorder.get("filtered_failures") or {}).values())
                    for case_id, checks in (recorder.get("checks") or {}).items():
                        interaction = interactions.get(case_id) or {}
                        request = interaction.get("request") or {}
                        response = interaction.get("response") or {}
                        for check in checks:
                            info = (check.get("failure_info") or {}).get("failure")
                            if check.get("status") == "success" or not info:
                                continue
                            operation = info.get("operation") or recorder.get("label", "?")
                            operations.add(operation)
                            status_code = response.get("status_code", 0)
                            content = decode(response.get("content"))
                            headline, details = classify(check["name"], info, status_code, content, request)
                            key = (check["name"], operation, headline)
                            run_failures.add(key)
                            entry = failures.setdefault(
                                key,
                                {
                                    "runs": [],
                                    "content_type": header(response.get("headers") or {}, "content-type"),
                                    "body": content.decode("utf-8", "backslashreplace"),
                                    "curl": curl(request),
                                    "statuses": set(),
                                    "details": [],
                                },
                            )
                            for detail in details:
                                if detail not in entry["details"]:
                                    entry["details"].append(detail)
                            entry["statuses"].add(status_code)
                            if name not in entry["runs"]:
                                entry["runs"].append(name)
                    for case in (recorder.get("cases") or {}).values():
                        label = recorder.get("label")
                        if label:
                            operations.add(label)
                elif "Error" in kind:
                    value = data.get("value") if isinstance(data.get("value"), dict) else data
                    message = str(value.get("message") or value.get("title") or json.dumps(value))
                    first = next((line for line in message.splitlines() if line.strip()), "")
                    text = short(f"{kind}: {value.get('type', '')}: {re.sub(r'[0-9]+', 'N', first)}", 300)
                    if name not in errors.setdefault(text, []):
                        errors[text].append(name)
        rows.append((name, seconds, status, cases, len(run_failures), dropped, reauth, seed))

    print("\n== API fuzzing: runs ==")
    print(f"{'run':<28} {'seconds':>7} {'cases':>6} {'failures':>8} {'dropped':>7} {'relogins':>8}  exit  seed")
    for name, seconds, status, cases, count, dropped, reauth, seed in rows:
        print(f"{name:<28} {seconds:>7.1f} {cases:>6} {count:>8} {dropped:>7} {reauth:>8}  {status:>4}  {seed}")
    print("(dropped: positive_data_acceptance failures that hooks.py accepts as refusals docs/spec/api.md mandates)")

    all_runs = [name for name, *_ in rows]
    if failures:
        print(f"\n== {len(failures)} distinct failures (check: operation → what the server answered) ==")
        current = None
        for (check, operation, message), entry in sorted(failures.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
            if check != current:
                current = check
                print(f"\n{check}")
            seen = "all runs" if entry["runs"] == all_runs else ", ".join(entry["runs"])
            statuses = ",".join(str(s) for s in sorted(entry["statuses"]))
            print(f"  {operation} → {short(message, 200)}")
            if entry["details"]:
                print(f"      {short('; '.join(entry['details']), 400)}")
            print(f"      answered {statuses} {entry['content_type'] or '(no content type)'}: {short(entry['body'], 150)}")
            print(f"      seen in: {seen}; e.g. {short(entry['curl'], 220)}")
    if errors:
        print(f"\n== {len(errors)} schemathesis errors ==")
        for text, names in errors.items():
            print(f"  [{', '.join(names)}] {text}")

    logged = OrderedDict()
    for log in sorted(root.glob("*-server.log")):
        for line in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                # Not a log record: a panic's message, or the like.
                if line.strip():
                    logged.setdefault(("OUTPUT", short(line, 240)), set()).add(log.name.removesuffix("-server.log"))
                continue
            message = record.get("message", "")
            # The harness serves the API only, on purpose.
            if message.startswith("no built web app there"):
                continue
            if record.get("level") in ("ERROR", "WARN") and "request served" not in message:
                fields = {k: v for k, v in record.items() if k not in ("timestamp", "span", "spans", "target", "level")}
                fields.pop("request_id", None)
                text = short(json.dumps(fields, ensure_ascii=False), 240)
                logged.setdefault((record["level"], text), set()).add(log.name.removesuffix("-server.log"))
    if logged:
        print(f"\n== {len(logged)} distinct ERROR/WARN lines in the server logs ==")
        for (level, text), targets in logged.items():
            print(f"  {level} [{', '.join(sorted(targets))}] {text}")

    failed = bool(failures or errors or any(status != 0 for _, _, status, *_ in rows))
    print(f"\n== API fuzzing: {'FAILED' if failed else 'passed'}: {len(failures)} distinct failures in {len(rows)} runs ==")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
